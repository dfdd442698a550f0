"""Runtimes: the single-process debug mode (``run_local``) and the Ray runtime
(``distrl.experiments.distributed``), both running one ``ExperimentConfig``.

Names load from their modules on first use (PEP 562), so that importing a
light submodule (the command line reads ``distributed.config`` to list the
learner devices) does not import torch, and nothing here imports ray.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public names and the module of this package that defines each.
_NAMES = {
    "ExperimentConfig": "config",
    "experiment_record": "config",
    "make_experiment_config": "make",
    "run_local": "local",
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_NAMES)
