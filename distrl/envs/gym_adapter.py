"""Adapts a gymnasium environment to the ``dm_env.Environment`` interface.

Gymnasium reports the end of an episode with two flags; ``dm_env`` with a
step type and a discount. The mapping is the one the learners rely on:

* ``terminated`` (a real terminal state): LAST with discount 0, nothing is
  bootstrapped past it;
* ``truncated`` only (a time limit): LAST with discount 1, the learner
  bootstraps from the final observation;
* both: termination wins (discount 0).

This adapter sits in the innermost loop (tens of thousands of steps per
second for CartPole), so all spec work happens once in ``__init__`` and a step
does one conversion (a copy into the spec's dtype) of the observation and
nothing else. Checking values against the specs is the job of
``ValidatingWrapper``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import dm_env
import gymnasium
import numpy as np
from dm_env import specs

from distrl.types import Nest

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)

_REWARD_SPEC = specs.Array(shape=(), dtype=np.float32, name="reward")
_DISCOUNT_SPEC = specs.BoundedArray(
    shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount"
)


def _spec_dtype(dtype: np.dtype) -> np.dtype:
    """float64 becomes float32 (networks and replay work in single precision);
    every other dtype is kept."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float64 else dtype


def space_to_spec(space: gymnasium.Space, name: str) -> specs.Array:
    """Returns the ``dm_env`` spec of a gymnasium Box or Discrete space.

    Box becomes a ``BoundedArray`` (float64 bounds cast to float32, infinite
    bounds kept infinite); ``Discrete(n, start)`` becomes
    ``DiscreteArray(n, int64)`` with values shifted to start at 0.
    """
    if isinstance(space, gymnasium.spaces.Box):
        dtype = _spec_dtype(space.dtype)
        with np.errstate(over="ignore"):  # +-1e308 bounds become +-inf in float32.
            low = space.low.astype(dtype)
            high = space.high.astype(dtype)
        return specs.BoundedArray(
            shape=space.shape, dtype=dtype, minimum=low, maximum=high, name=name
        )
    if isinstance(space, gymnasium.spaces.Discrete):
        return specs.DiscreteArray(num_values=int(space.n), dtype=np.int64, name=name)
    raise NotImplementedError(
        f"gymnasium space {space!r} ({type(space).__name__}) for {name!r} is not "
        "supported; only Box and Discrete spaces are converted to dm_env specs"
    )


def _observation_converter(space: gymnasium.Space) -> Callable[[Any], np.ndarray]:
    """Returns a function mapping a gymnasium observation onto a new array of
    its spec's dtype.

    The copy (a fraction of a microsecond for small arrays) guards adders,
    which hold on to observations for several steps, against envs that
    update one observation buffer in place.
    """
    if isinstance(space, gymnasium.spaces.Discrete):
        start = int(space.start)
        if start:
            return lambda obs: np.array(int(obs) - start, dtype=np.int64)
        return lambda obs: np.array(obs, dtype=np.int64)
    dtype = _spec_dtype(space.dtype)
    return lambda obs: np.array(obs, dtype=dtype)


def _action_converter(space: gymnasium.Space) -> Callable[[Nest], Any]:
    """Returns a function mapping a spec-conforming action onto the gym space."""
    if isinstance(space, gymnasium.spaces.Discrete):
        start = int(space.start)
        # operator.index accepts Python ints, numpy integer scalars and 0-d
        # integer arrays, and rejects floats instead of silently truncating.
        if start:
            return lambda action: operator.index(action) + start
        return operator.index
    dtype = np.dtype(space.dtype)
    return lambda action: np.asarray(action, dtype=dtype)


class GymnasiumToDmEnv(dm_env.Environment):
    """A ``dm_env.Environment`` view of a (single, non-vectorised) gymnasium env.

    Observations match ``observation_spec()`` exactly (float64 is delivered as
    float32); rewards and discounts are ``np.float32`` scalars. ``step`` on a
    fresh environment or after a LAST timestep starts a new episode and
    ignores its action, as ``dm_env`` specifies.

    Seeding: the first ``reset`` passes ``seed`` to gymnasium's
    ``reset(seed=...)``; later resets pass none so the environment's RNG stream
    continues, which makes a whole run (not only its first episode) a
    function of the seed. The action space is seeded too, so
    ``gym_env.action_space.sample()`` is reproducible.
    """

    def __init__(self, gym_env: gymnasium.Env, seed: int | None):
        self._gym_env = gym_env
        self._seed = seed
        self._observation_spec = space_to_spec(gym_env.observation_space, "observation")
        self._action_spec = space_to_spec(gym_env.action_space, "action")
        self._convert_observation = _observation_converter(gym_env.observation_space)
        self._convert_action = _action_converter(gym_env.action_space)
        if seed is not None:
            gym_env.action_space.seed(seed)
        self._seed_on_next_reset = True
        self._reset_next_step = True

    @property
    def gym_env(self) -> gymnasium.Env:
        """The wrapped gymnasium environment."""
        return self._gym_env

    @property
    def name(self) -> str:
        """The gymnasium id (e.g. ``CartPole-v1``), or the class name without a spec."""
        spec = self._gym_env.spec
        return spec.id if spec is not None else type(self._gym_env.unwrapped).__name__

    @property
    def reward_threshold(self) -> float | None:
        """The episode return at which gymnasium deems the task solved, if registered."""
        spec = self._gym_env.spec
        return None if spec is None else spec.reward_threshold

    def reset(self) -> dm_env.TimeStep:
        if self._seed_on_next_reset:
            observation, _ = self._gym_env.reset(seed=self._seed)
            self._seed_on_next_reset = False
        else:
            observation, _ = self._gym_env.reset()
        self._reset_next_step = False
        return dm_env.TimeStep(
            dm_env.StepType.FIRST, None, None, self._convert_observation(observation)
        )

    def step(self, action: Nest) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        observation, reward, terminated, truncated, _ = self._gym_env.step(
            self._convert_action(action)
        )
        observation = self._convert_observation(observation)
        reward = np.float32(reward)
        if terminated:
            self._reset_next_step = True
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, _ZERO, observation)
        if truncated:
            self._reset_next_step = True
            return dm_env.TimeStep(dm_env.StepType.LAST, reward, _ONE, observation)
        return dm_env.TimeStep(dm_env.StepType.MID, reward, _ONE, observation)

    def observation_spec(self) -> specs.Array:
        return self._observation_spec

    def action_spec(self) -> specs.Array:
        return self._action_spec

    def reward_spec(self) -> specs.Array:
        return _REWARD_SPEC

    def discount_spec(self) -> specs.BoundedArray:
        return _DISCOUNT_SPEC

    def close(self) -> None:
        self._gym_env.close()
