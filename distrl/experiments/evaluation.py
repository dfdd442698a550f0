"""Greedy evaluation episodes."""

from __future__ import annotations

from typing import NamedTuple

import dm_env
import numpy as np

from distrl.core import Actor


class EvaluationResult(NamedTuple):
    """Undiscounted returns and lengths (env steps) of the evaluation episodes."""

    returns: np.ndarray
    lengths: np.ndarray


def evaluate(environment: dm_env.Environment, actor: Actor, num_episodes: int) -> EvaluationResult:
    """Runs ``num_episodes`` full episodes with ``actor`` (no learning)."""
    returns = np.zeros(num_episodes, dtype=np.float64)
    lengths = np.zeros(num_episodes, dtype=np.int64)
    for episode in range(num_episodes):
        timestep = environment.reset()
        actor.observe_first(timestep)
        total = 0.0
        steps = 0
        while not timestep.last():
            action = actor.select_action(timestep.observation)
            timestep = environment.step(action)
            total += float(timestep.reward)
            steps += 1
        returns[episode] = total
        lengths[episode] = steps
    return EvaluationResult(returns, lengths)
