"""Greedy evaluation episodes."""

from __future__ import annotations

import dm_env
import numpy as np

from distrl.core import Actor


def evaluate(environment: dm_env.Environment, actor: Actor, num_episodes: int) -> np.ndarray:
    """Runs ``num_episodes`` full episodes with ``actor`` (no learning) and returns their returns."""
    returns = np.zeros(num_episodes, dtype=np.float64)
    for episode in range(num_episodes):
        timestep = environment.reset()
        actor.observe_first(timestep)
        total = 0.0
        while not timestep.last():
            action = actor.select_action(timestep.observation)
            timestep = environment.step(action)
            total += float(timestep.reward)
        returns[episode] = total
    return returns
