"""Runtimes: the single-process debug mode (``run_local``) and the Ray runtime
(``distrl.experiments.distributed``), both running one ``ExperimentConfig``.

Names load from their modules on first use (PEP 562), so that importing a
light submodule (the command line reads ``distributed.config`` to list the
learner devices) does not import torch, and nothing here imports ray.
"""

from distrl.utils.lazy import lazy_attributes

#: Public names and the module of this package that defines each.
_NAMES = {
    "ExperimentConfig": "config",
    "experiment_record": "config",
    "make_experiment_config": "make",
    "run_local": "local",
}

__getattr__ = lazy_attributes(__name__, _NAMES)

__all__ = list(_NAMES)
