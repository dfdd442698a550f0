"""Greedy evaluation episodes, and the weights an evaluation ran with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import dm_env
import numpy as np
import torch

from distrl.core import Actor, VariableSource
from distrl.environment_loop import EnvironmentLoop
from distrl.experiments.config import ExperimentConfig
from distrl.types import Versioned
from distrl.utils.checkpointing import save_checkpoint
from distrl.utils.seeding import derive_seed

#: File name, in the run directory, of the best-evaluated policy's weights.
BEST_POLICY_FILE = "best_policy.pt"


class EvaluationResult(NamedTuple):
    """Undiscounted returns and lengths (env steps) of the evaluation episodes."""

    returns: np.ndarray
    lengths: np.ndarray


def evaluate(environment: dm_env.Environment, actor: Actor, num_episodes: int) -> EvaluationResult:
    """Runs ``num_episodes`` full episodes with ``actor`` through an ``EnvironmentLoop``
    that never calls ``actor.update`` (the weights stay those loaded before)."""
    results = EnvironmentLoop(environment, actor, should_update=False).run(num_episodes=num_episodes)
    returns = np.array([r["episode_return"] for r in results], dtype=np.float64)
    lengths = np.array([r["episode_length"] for r in results], dtype=np.int64)
    return EvaluationResult(returns, lengths)


class RecordingVariableSource(VariableSource):
    """Passes ``get_variables`` through to ``source`` and keeps the last answer.

    The evaluation actor pulls its weights through it, so after an
    evaluation ``latest`` holds exactly the parameters (and version) that
    were evaluated, even though a distributed learner has moved on since.
    Holding them costs no copy: published parameters are immutable snapshots.
    """

    def __init__(self, source: VariableSource) -> None:
        self._source = source
        self.latest: Versioned[Mapping[str, Any]] | None = None

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        versioned = self._source.get_variables(names)
        if self.latest is None or versioned.version > self.latest.version:
            self.latest = versioned
        return versioned


def save_policy(path: str | os.PathLike, variables: Versioned[Mapping[str, Any]], **info: Any) -> None:
    """Writes the evaluated actor's parameters as ``{"version", "variables", **info}``, atomically.

    ``variables`` maps each actor module's name (``q_network`` for DQN,
    ``policy`` for DDPG and A2C) to its state dict, as torch tensors, so
    ``module.load_state_dict(load_checkpoint(path)["variables"][name])``
    restores it (``torch.load(weights_only=True)`` accepts plain tensors only).
    """
    tensors = {
        name: {key: torch.from_numpy(np.array(value)) for key, value in params.items()}
        for name, params in variables.value.items()
    }
    save_checkpoint(path, {"version": int(variables.version), "variables": tensors, **info})


def evaluate_and_keep_best(
    config: ExperimentConfig,
    actor: Actor,
    source: RecordingVariableSource,
    record: Callable[[EvaluationResult], bool],
    run_dir: str | os.PathLike,
    env_steps: int,
) -> EvaluationResult:
    """One evaluation round, the same in every mode: the actor loads the
    latest weights, plays ``config.eval_episodes`` greedy episodes in a fresh,
    identically seeded environment (so every round starts from the same
    states and rounds compare like with like), ``record`` logs the result and
    says whether it is the best so far, and then the weights just evaluated
    are written to ``run_dir/best_policy.pt``.

    ``actor`` must pull its weights through ``source``.
    """
    actor.update(wait=True)
    environment = config.environment_factory(derive_seed(config.seed, "eval"))
    try:
        result = evaluate(environment, actor, config.eval_episodes)
    finally:
        environment.close()
    if record(result) and source.latest is not None:
        save_policy(
            Path(run_dir) / BEST_POLICY_FILE, source.latest, agent=config.agent, env=config.env,
            env_steps=int(env_steps), eval_return_mean=float(np.mean(result.returns)),
        )
    return result
