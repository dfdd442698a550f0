"""A small image task with a known optimum, in either channel order, for tests and checks.

``ImageSideTask``: every step shows an image with a bright square in its
left or right half (drawn at random) over a dim noisy background; action 0
says "left", 1 says "right", and a correct answer earns reward 1. An episode
is ``episode_length`` such steps and ends with a termination, so the best
return is ``episode_length`` and a policy that ignores the image gets half
of it. Learning it needs a convolutional encoder to find the square, which
is what it checks: an agent given the same pixels as (C, H, W) or as
(H, W, C) must learn it either way.

The factories take the registry's ``seed=`` keyword, so the task runs from
the command line as ``--env distrl.envs.image_tasks:channels_first`` (or
``:channels_last``, ``:channels_first_large`` for the Nature CNN, ``:atari_shaped`` for
Atari's [4, 84, 84] stacks).
"""

from __future__ import annotations

import dm_env
import numpy as np
from dm_env import specs


class ImageSideTask(dm_env.Environment):
    """Says which half of a uint8 image holds the bright square (see the module docstring).

    Args:
      seed: seeds the task's own generator (squares, noise).
      size: image height and width in pixels (>= 4).
      channels: colour channels (the square is bright in all of them).
      channels_last: observations are (size, size, channels) when True,
        (channels, size, size) when False.
      episode_length: steps per episode (>= 1).
      continuous: actions are one float in [-1, 1] (its sign says the side:
        negative left, positive right) instead of 0 / 1.
    """

    def __init__(
        self, seed: int, size: int = 10, channels: int = 3, channels_last: bool = False, episode_length: int = 10,
        continuous: bool = False,
    ) -> None:
        if size < 4 or channels < 1 or episode_length < 1:
            raise ValueError(f"need size >= 4, channels >= 1, episode_length >= 1; got {size}, {channels}, "
                             f"{episode_length}")
        self._rng = np.random.default_rng(seed)
        self._size, self._channels = size, channels
        self._channels_last = channels_last
        self._episode_length = episode_length
        self._continuous = continuous
        self._step = 0
        self._side = 0
        self._reset_next_step = True

    @property
    def name(self) -> str:
        return "image_side_task"

    @property
    def reward_threshold(self) -> float:
        """Nine in ten answers right on average."""
        return 0.9 * self._episode_length

    def _observation(self) -> np.ndarray:
        size, half = self._size, self._size // 2
        image = self._rng.integers(0, 50, size=(size, size), dtype=np.uint8)
        self._side = int(self._rng.integers(2))
        side = max(1, half // 2)
        top = int(self._rng.integers(0, size - side + 1))
        left = int(self._rng.integers(0, half - side + 1)) + (half if self._side else 0)
        image[top:top + side, left:left + side] = 255
        stacked = np.repeat(image[None], self._channels, axis=0)
        return np.ascontiguousarray(stacked.transpose(1, 2, 0)) if self._channels_last else stacked

    def reset(self) -> dm_env.TimeStep:
        self._step = 0
        self._reset_next_step = False
        return dm_env.restart(self._observation())

    def step(self, action) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        chosen = int(float(np.asarray(action).reshape(-1)[0]) > 0) if self._continuous else int(action)
        reward = np.float32(1.0 if chosen == self._side else 0.0)
        self._step += 1
        observation = self._observation()
        if self._step >= self._episode_length:
            self._reset_next_step = True
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, np.float32(0.0), observation)
        return dm_env.TimeStep(dm_env.StepType.MID, reward, np.float32(1.0), observation)

    def observation_spec(self) -> specs.BoundedArray:
        shape = (self._size, self._size, self._channels) if self._channels_last else (
            self._channels, self._size, self._size)
        return specs.BoundedArray(shape, np.uint8, 0, 255, name="observation")

    def action_spec(self) -> specs.Array:
        if self._continuous:
            return specs.BoundedArray((1,), np.float32, -1.0, 1.0, name="action")
        return specs.DiscreteArray(2, dtype=np.int64, name="action")

    def reward_spec(self) -> specs.Array:
        return specs.Array((), np.float32, name="reward")

    def discount_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount")


def channels_first(seed: int) -> ImageSideTask:
    """10x10 RGB frames as (3, 10, 10): the compact CNN."""
    return ImageSideTask(seed, channels_last=False)


def channels_last(seed: int) -> ImageSideTask:
    """10x10 RGB frames as (10, 10, 3): the compact CNN, permuted on the device."""
    return ImageSideTask(seed, channels_last=True)


def channels_first_continuous(seed: int) -> ImageSideTask:
    """``channels_first`` with a float action in [-1, 1] (for DDPG and Gaussian A2C)."""
    return ImageSideTask(seed, channels_last=False, continuous=True)


def channels_first_large(seed: int) -> ImageSideTask:
    """40x40 RGB frames as (3, 40, 40): large enough for the Nature CNN."""
    return ImageSideTask(seed, size=40, channels_last=False)


def channels_last_large(seed: int) -> ImageSideTask:
    """40x40 RGB frames as (40, 40, 3): the Nature CNN, permuted on the device."""
    return ImageSideTask(seed, size=40, channels_last=True)


def atari_shaped(seed: int) -> ImageSideTask:
    """Four 84x84 planes as (4, 84, 84), the shape of Atari's stacked frames (Mnih et al. 2015):
    the Nature CNN at its usual input size, without an emulator (for benchmarks of the learner)."""
    return ImageSideTask(seed, size=84, channels=4, channels_last=False)
