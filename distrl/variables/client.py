"""VariableClient: keeps an actor's copy of the networks at the source's latest version."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from distrl.core import VariableSource
from distrl.networks.params import load_numpy_params_
from distrl.types import Versioned


class VariableClient:
    """Pulls parameters from a ``VariableSource`` every ``update_period`` calls.

    Only a version newer than the one held is loaded (into the given torch
    modules, in place, without reallocating), so an unchanged source costs one
    cheap ``get_variables`` call and no copy. ``version`` is the learner step
    count of the parameters currently loaded (-1 before the first load).
    """

    def __init__(
        self,
        source: VariableSource,
        modules: Mapping[str, torch.nn.Module],
        update_period: int = 1,
    ) -> None:
        if update_period < 1:
            raise ValueError(f"update_period must be >= 1, got {update_period!r}")
        self._source = source
        self._modules = dict(modules)
        self._names = list(self._modules)
        self._update_period = update_period
        self._calls = 0
        self.version = -1

    def update(self, wait: bool = False) -> None:
        """Counts one call; on every ``update_period``-th call (or when ``wait``) loads a newer version."""
        self._calls += 1
        if wait or self._calls >= self._update_period:
            self._calls = 0
            self._fetch()

    def update_and_wait(self) -> None:
        """Loads the latest version now."""
        self.update(wait=True)

    def update_to_newer(self) -> None:
        """Loads a version newer than the one held, waiting for it as the source does
        (``VariableSource.get_newer_variables``): the lockstep of synchronous on-policy actors."""
        self._calls = 0
        self._load(self._source.get_newer_variables(self._names, self.version))

    def _fetch(self) -> None:
        self._load(self._source.get_variables(self._names))

    def _load(self, versioned: Versioned[Mapping[str, Any]]) -> None:
        if versioned.version <= self.version:
            return
        for name, module in self._modules.items():
            load_numpy_params_(module, versioned.value[name])
        self.version = versioned.version
