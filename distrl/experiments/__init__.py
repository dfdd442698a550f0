"""Runtimes: the single-process debug mode here; the Ray runtime in
``distrl.experiments.distributed`` (imported on demand, since it imports ray)."""

from distrl.experiments.config import ExperimentConfig
from distrl.experiments.local import run_local
from distrl.experiments.make import make_experiment_config

__all__ = ["ExperimentConfig", "make_experiment_config", "run_local"]
