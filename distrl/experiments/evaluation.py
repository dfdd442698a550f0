"""Greedy evaluation episodes, and the weights an evaluation ran with."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Protocol, Sequence

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

#: Evaluation episode cap, in env steps, for environments that declare no time limit of their own:
#: ALE's standard cap (108,000 frames at frame skip 4), long enough for any task with an end.
DEFAULT_EVAL_MAX_EPISODE_STEPS = 27_000


class EvaluationResult(NamedTuple):
    """Undiscounted returns (float64 [N]) and lengths (env steps, int64 [N]) of the N evaluation
    episodes, which of them the step cap cut before they ended (bool [N]), and the wall-clock
    seconds the episodes took (a single-process run's training pauses that long)."""

    returns: np.ndarray
    lengths: np.ndarray
    cut: np.ndarray
    duration_s: float = 0.0


def episode_step_cap(environment: dm_env.Environment, configured: int | None) -> int:
    """The evaluation episode cap: ``configured`` when set, else the environment's own time limit
    (a ``max_episode_steps`` attribute, as the gymnasium adapter, GridWorld, Atari and dm_control
    environments have), else ``DEFAULT_EVAL_MAX_EPISODE_STEPS``."""
    if configured is not None:
        return int(configured)
    own = getattr(environment, "max_episode_steps", None)
    return int(own) if own else DEFAULT_EVAL_MAX_EPISODE_STEPS


def evaluate(
    environment: dm_env.Environment, actor: Actor, num_episodes: int, max_episode_steps: int | None = None,
    deadline: float | None = None,
) -> EvaluationResult:
    """Runs ``num_episodes`` episodes with ``actor`` through an ``EnvironmentLoop`` that never
    calls ``actor.update`` (the weights stay those loaded before).

    Each episode stops at its end or after ``episode_step_cap(environment,
    max_episode_steps)`` steps, so a greedy policy that never reaches an end
    (a wall it walks into forever) cannot hang the run; such episodes count
    with the return they had and are marked in ``cut``. With a ``deadline``
    (``time.monotonic()`` seconds) the episode running then is cut too and no
    further episode starts, so fewer than ``num_episodes`` may be returned
    (never none: the first episode always starts).
    """
    started = time.monotonic()
    cap = episode_step_cap(environment, max_episode_steps)
    should_stop = None if deadline is None else (lambda: time.monotonic() > deadline)
    loop = EnvironmentLoop(environment, actor, should_update=False, should_stop=should_stop)
    results = []
    for _ in range(num_episodes):
        if results and should_stop is not None and should_stop():
            break
        results.append(loop.run_episode(max_steps=cap))
    returns = np.array([r["episode_return"] for r in results], dtype=np.float64)
    lengths = np.array([r["episode_length"] for r in results], dtype=np.int64)
    cut = np.array([not r["completed"] for r in results], dtype=bool)
    return EvaluationResult(returns, lengths, cut, time.monotonic() - started)


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


class EvaluationRecorder(Protocol):
    """What ``evaluate_and_keep_best`` needs of a run's recorder (``RunRecorder``)."""

    run_dir: Path
    eval_history: list[dict[str, Any]]

    def record_evaluation(self, result: EvaluationResult, env_steps: int, learner_steps: int) -> bool:
        """Logs ``result``; True when it is the best evaluation so far."""


def evaluate_and_keep_best(
    config: ExperimentConfig,
    actor: Actor,
    source: RecordingVariableSource,
    recorder: EvaluationRecorder,
    env_steps: int,
    learner_steps: int,
    deadline: float | None = None,
) -> bool:
    """One evaluation round, the same in every mode; returns True when ``config.on_evaluation``
    asks the run to stop. ``deadline`` bounds it in time (``evaluate``).

    The actor loads the latest weights and plays ``config.eval_episodes``
    greedy episodes in a fresh, identically seeded environment (so every round
    starts from the same states and rounds compare like with like); the
    recorder logs the result, and when it is the best so far the weights just
    evaluated are written to ``run_dir/best_policy.pt``. Then
    ``config.on_evaluation`` (when set) gets the evaluation's record (the
    dict appended to the summary's ``evaluations``: ``env_steps``,
    ``learner_steps``, ``wall_clock_s``, ``return_mean``, ...); a True
    answer ends the run as the budget would (a Ray Tune trial that ASHA
    stops, for example).

    ``actor`` must pull its weights through ``source``.
    """
    actor.update(wait=True)
    environment = config.environment_factory(derive_seed(config.seed, "eval"))
    try:
        result = evaluate(environment, actor, config.eval_episodes, config.eval_max_episode_steps, deadline)
    finally:
        environment.close()
    if recorder.record_evaluation(result, env_steps, learner_steps) and source.latest is not None:
        save_policy(
            Path(recorder.run_dir) / BEST_POLICY_FILE, source.latest, agent=config.agent, env=config.env,
            env_steps=int(env_steps), eval_return_mean=float(np.mean(result.returns)),
        )
    if config.on_evaluation is None:
        return False
    return bool(config.on_evaluation(dict(recorder.eval_history[-1])))
