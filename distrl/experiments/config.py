"""ExperimentConfig: one description of a run, executed by any runtime."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import dm_env

from distrl.agents.builder import Builder
from distrl.specs import EnvironmentSpec
from distrl.utils.config import ConfigError, to_dict


@dataclasses.dataclass
class ExperimentConfig:
    """Everything a runtime needs; the same object runs in one process or on Ray.

    ``environment_factory(seed)`` returns a fresh ``dm_env.Environment``;
    ``network_factory(spec)`` returns the agent's networks (a new,
    independently initialised set per call). ``eval_max_episode_steps``
    caps evaluation episodes (None: the environment's own time limit, else
    ``evaluation.DEFAULT_EVAL_MAX_EPISODE_STEPS``). ``on_evaluation`` is
    called after every evaluation with its record (``env_steps``,
    ``return_mean``, ...; see ``evaluation.evaluate_and_keep_best``) and ends
    the run when it returns True (e.g. a Ray Tune trial stopped by ASHA).
    ``wandb_project`` also sends the metrics to Weights & Biases (the
    ``wandb`` extra; ``WANDB_MODE=offline`` keeps them on disk).

    Checkpoints (``distrl.experiments.checkpoints``) go to
    ``RUN_DIR/checkpoints`` every ``checkpoint_every_s`` seconds (the first
    within 30 s) and/or every ``checkpoint_every_env_steps`` env steps, and
    at the end; the newest ``keep_checkpoints`` (>= 2) are kept;
    ``checkpoint_replay`` puts the replay table in them (None: when it holds
    at most 2 GiB).
    """

    agent: str
    env: str
    builder: Builder
    network_factory: Callable[[EnvironmentSpec], Any]
    environment_factory: Callable[[int], dm_env.Environment]
    max_env_steps: int
    seed: int = 0
    eval_every: int = 5_000
    eval_episodes: int = 10
    eval_max_episode_steps: int | None = None
    reward_threshold: float | None = None
    run_dir: str = "runs"
    progress: bool = True
    tensorboard: bool = False
    wandb_project: str | None = None
    torch_threads: int = 1
    agent_config: Any = None
    on_evaluation: Callable[[Mapping[str, Any]], bool | None] | None = None
    checkpoint_every_s: float | None = 120.0
    checkpoint_every_env_steps: int | None = None
    keep_checkpoints: int = 3
    checkpoint_replay: bool | None = None

    def __post_init__(self) -> None:
        for name in ("max_env_steps", "eval_every", "eval_episodes", "torch_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ExperimentConfig.{name} must be a positive integer, got {value!r}")
        if self.checkpoint_every_s is not None and not (
                isinstance(self.checkpoint_every_s, (int, float)) and math.isfinite(self.checkpoint_every_s)
                and self.checkpoint_every_s > 0):
            raise ValueError(f"ExperimentConfig.checkpoint_every_s must be a finite number > 0 or None, "
                             f"got {self.checkpoint_every_s!r}")
        every = self.checkpoint_every_env_steps
        if every is not None and (not isinstance(every, int) or every <= 0):
            raise ValueError(f"ExperimentConfig.checkpoint_every_env_steps must be a positive integer or None, "
                             f"got {every!r}")
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 2:
            raise ValueError(f"ExperimentConfig.keep_checkpoints must be an integer >= 2 (a damaged newest one "
                             f"falls back to the one before), got {self.keep_checkpoints!r}")
        cap = self.eval_max_episode_steps
        if cap is not None and (not isinstance(cap, int) or cap <= 0):
            raise ValueError(f"ExperimentConfig.eval_max_episode_steps must be a positive integer or None, got {cap!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ExperimentConfig.seed must be a non-negative integer, got {self.seed!r}")


def build_networks(config: ExperimentConfig, spec: EnvironmentSpec) -> Any:
    """``config.network_factory(spec)``, with a ``ValueError`` (an observation or action spec the
    agent's networks cannot take) re-raised as a ``ConfigError`` naming the agent and the env."""
    try:
        return config.network_factory(spec)
    except ValueError as error:
        raise ConfigError(f"agent {config.agent!r} cannot run on environment {config.env!r}: {error}") from error


def experiment_record(config: ExperimentConfig, spec: EnvironmentSpec | None = None) -> dict[str, Any]:
    """The JSON-friendly parts of ``config`` (all but the builder and the
    factories), with the agent config as a dict: what ``config.json`` holds.

    With the environment's ``spec`` it also holds ``observation_encoder``:
    the encoder ``distrl.networks.factory.make_encoder`` picks for the
    observations (per leaf for nested ones), which every agent here uses.
    """
    record: dict[str, Any] = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in ("builder", "network_factory", "environment_factory", "agent_config", "on_evaluation")
    }
    if config.agent_config is not None:
        record["agent_config"] = to_dict(config.agent_config)
    if spec is not None:
        from distrl.networks.factory import describe_encoder, make_encoder

        record["observation_encoder"] = describe_encoder(make_encoder(spec.observations))
    return record
