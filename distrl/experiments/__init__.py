"""Runtimes: the single-process debug mode (and, later, Ray)."""

from distrl.experiments.config import ExperimentConfig
from distrl.experiments.local import run_local
from distrl.experiments.make import make_experiment_config

__all__ = ["ExperimentConfig", "make_experiment_config", "run_local"]
