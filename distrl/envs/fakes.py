"""Tiny scripted environments whose every value is known in advance, for tests.

Adder, loop and replay tests build their expected outputs by hand from the
script: in each episode, step k (k = 1 .. episode_length) returns an
observation filled with k, reward k and the MID discount; the FIRST
observation is filled with 0. So the transition taken from observation k-1
has reward k and next observation k, whatever the actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import dm_env
import numpy as np
from dm_env import specs

from distrl.types import Nest


class FakeEnvironment(dm_env.Environment):
    """A deterministic episode script with discrete actions.

    Args:
      episode_length: number of steps per episode (>= 1).
      obs_shape: shape of every observation.
      terminate: True ends each episode with a termination (discount 0);
        False with a truncation (discount 1, the learner bootstraps).
      num_actions: size of the ``DiscreteArray`` action spec.
      discount: the environment discount on MID steps.
      obs_dtype: dtype of the observations.

    ``actions`` records every action passed to ``step`` (including ignored
    ones that start a new episode), so tests can check what an actor sent.
    """

    def __init__(
        self,
        episode_length: int,
        obs_shape: Sequence[int] = (),
        terminate: bool = True,
        num_actions: int = 2,
        discount: float = 1.0,
        obs_dtype: np.dtype | type = np.float32,
    ):
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self._episode_length = episode_length
        self._obs_shape = tuple(obs_shape)
        self._obs_dtype = np.dtype(obs_dtype)
        self._terminate = terminate
        self._num_actions = num_actions
        self._discount = np.float32(discount)
        self._step = 0
        self._reset_next_step = True
        self.actions: list[Nest] = []

    def _observation(self) -> np.ndarray:
        return np.full(self._obs_shape, self._step, dtype=self._obs_dtype)

    def reset(self) -> dm_env.TimeStep:
        self._step = 0
        self._reset_next_step = False
        return dm_env.TimeStep(dm_env.StepType.FIRST, None, None, self._observation())

    def step(self, action: Nest) -> dm_env.TimeStep:
        self.actions.append(action)
        if self._reset_next_step:
            return self.reset()
        self._step += 1
        reward = np.float32(self._step)
        if self._step < self._episode_length:
            return dm_env.TimeStep(dm_env.StepType.MID, reward, self._discount, self._observation())
        self._reset_next_step = True
        discount = np.float32(0.0 if self._terminate else 1.0)
        return dm_env.TimeStep(dm_env.StepType.LAST, reward, discount, self._observation())

    def observation_spec(self) -> specs.Array:
        return specs.Array(self._obs_shape, self._obs_dtype, name="observation")

    def action_spec(self) -> specs.Array:
        return specs.DiscreteArray(self._num_actions, dtype=np.int64, name="action")

    def reward_spec(self) -> specs.Array:
        return specs.Array((), np.float32, name="reward")

    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount")


class ContinuousFake(FakeEnvironment):
    """``FakeEnvironment``'s script with a float32 Box action in [-1, 1]^action_dim."""

    def __init__(
        self,
        episode_length: int,
        obs_shape: Sequence[int] = (),
        terminate: bool = True,
        action_dim: int = 1,
        discount: float = 1.0,
    ):
        super().__init__(episode_length, obs_shape, terminate, discount=discount)
        self._action_dim = action_dim

    def action_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((self._action_dim,), np.float32, -1.0, 1.0, name="action")
