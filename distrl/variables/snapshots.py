"""Per-version numpy snapshots of a learner's networks (what ``get_variables`` serves)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import nn

from distrl.networks.params import to_numpy_params
from distrl.types import Versioned


class ParameterSnapshots:
    """Copies the named modules' parameters to numpy at most once per version.

    Learners serve ``get_variables`` from here: several actors (or the
    evaluator) asking at the same learner step share one copy, and a new
    copy is made only after the learner has stepped.
    """

    def __init__(self, modules: Mapping[str, nn.Module], owner: str) -> None:
        self._modules = dict(modules)
        self._owner = owner
        self._latest: Versioned[Mapping[str, Any]] | None = None

    def get(self, version: int, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        """Returns ``Versioned(version, {name: numpy params})`` for ``names``."""
        unknown = set(names) - self._modules.keys()
        if unknown:
            raise KeyError(f"{self._owner} has no variables named {sorted(unknown)}; it has {sorted(self._modules)}")
        latest = self._latest
        if latest is None or latest.version != version:
            latest = Versioned(version, {name: to_numpy_params(m) for name, m in self._modules.items()})
            self._latest = latest
        return Versioned(latest.version, {name: latest.value[name] for name in names})

    def invalidate(self) -> None:
        """Forgets the cached copy (after a restore changed the weights in place)."""
        self._latest = None
