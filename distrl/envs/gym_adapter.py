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

from distrl.specs import SpecNest, narrow_bounds
from distrl.types import Nest

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)

_REWARD_SPEC = specs.Array(shape=(), dtype=np.float32, name="reward")
_DISCOUNT_SPEC = specs.BoundedArray(
    shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount"
)


class UnsupportedSpaceError(ValueError):
    """A gymnasium space that has no dm_env spec here (raised before anything runs)."""


def _spec_dtype(dtype: np.dtype) -> np.dtype:
    """float64 becomes float32 (networks and replay work in single precision);
    every other dtype is kept."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float64 else dtype


def space_to_spec(space: gymnasium.Space, name: str) -> SpecNest:
    """Returns the ``dm_env`` spec (or nest of specs) of a gymnasium space.

    * ``Box`` (any dtype, any rank): a ``BoundedArray``; float64 becomes float32
      with its bounds rounded inwards (``narrow_bounds``), other dtypes keep
      theirs; infinite bounds stay infinite.
    * ``Discrete(n, start)``: ``DiscreteArray(n, int64)``, values shifted to
      start at 0.
    * ``MultiDiscrete(nvec, start)``: an int64 ``BoundedArray`` of nvec's
      shape with minimum 0 and maximum nvec - 1 (values shifted by start).
    * ``MultiBinary(n)``: an int8 ``BoundedArray`` in [0, 1].
    * ``Dict``: a dict of specs (same keys, in the space's order);
      ``Tuple``: a tuple of specs; nested freely.

    Raises ``UnsupportedSpaceError`` naming the space for anything else
    (``Text``, ``Graph``, ``Sequence``, ``OneOf``).
    """
    spaces = gymnasium.spaces
    if isinstance(space, spaces.Box):
        dtype = _spec_dtype(space.dtype)
        if np.issubdtype(dtype, np.floating):
            try:
                low, high = narrow_bounds(space.low, space.high, dtype)
            except ValueError as error:
                raise UnsupportedSpaceError(f"gymnasium space {space!r} for {name!r}: {error}") from error
        else:
            low, high = space.low.astype(dtype), space.high.astype(dtype)
        return specs.BoundedArray(shape=space.shape, dtype=dtype, minimum=low, maximum=high, name=name)
    if isinstance(space, spaces.Discrete):
        return specs.DiscreteArray(num_values=int(space.n), dtype=np.int64, name=name)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec, dtype=np.int64)
        return specs.BoundedArray(
            shape=nvec.shape, dtype=np.int64, minimum=np.zeros_like(nvec), maximum=nvec - 1, name=name
        )
    if isinstance(space, spaces.MultiBinary):
        return specs.BoundedArray(shape=space.shape, dtype=np.int8, minimum=0, maximum=1, name=name)
    if isinstance(space, spaces.Dict):
        return {key: space_to_spec(sub, f"{name}/{key}") for key, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(space_to_spec(sub, f"{name}/{index}") for index, sub in enumerate(space.spaces))
    raise UnsupportedSpaceError(
        f"gymnasium space {space!r} ({type(space).__name__}) for {name!r} is not supported: "
        "Box, Discrete, MultiDiscrete, MultiBinary and Dict/Tuple nests of them are"
    )


def _observation_converter(space: gymnasium.Space) -> Callable[[Any], Nest]:
    """Returns a function mapping a gymnasium observation onto new arrays of its spec's dtypes.

    The copy (a fraction of a microsecond for small arrays) guards adders,
    which hold on to observations for several steps, against envs that
    update one observation buffer in place.
    """
    spaces = gymnasium.spaces
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        if start:
            return lambda obs: np.array(int(obs) - start, dtype=np.int64)
        return lambda obs: np.array(obs, dtype=np.int64)
    if isinstance(space, spaces.MultiDiscrete):
        start = np.asarray(space.start, dtype=np.int64)
        if start.any():
            return lambda obs: np.asarray(obs, dtype=np.int64) - start
        return lambda obs: np.array(obs, dtype=np.int64)
    if isinstance(space, spaces.Dict):
        converters = {key: _observation_converter(sub) for key, sub in space.spaces.items()}
        return lambda obs: {key: convert(obs[key]) for key, convert in converters.items()}
    if isinstance(space, spaces.Tuple):
        converters = [_observation_converter(sub) for sub in space.spaces]
        return lambda obs: tuple(convert(value) for convert, value in zip(converters, obs))
    dtype = _spec_dtype(space.dtype)
    return lambda obs: np.array(obs, dtype=dtype)


def _action_converter(space: gymnasium.Space) -> Callable[[Nest], Any]:
    """Returns a function mapping a spec-conforming action onto the gym space.

    Raises ``UnsupportedSpaceError`` for nested (Dict, Tuple) action spaces,
    which no agent here acts in.
    """
    spaces = gymnasium.spaces
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        # operator.index accepts Python ints, numpy integer scalars and 0-d
        # integer arrays, and rejects floats instead of silently truncating.
        if start:
            return lambda action: operator.index(action) + start
        return operator.index
    if isinstance(space, spaces.MultiDiscrete):
        start, dtype = np.asarray(space.start, dtype=np.int64), np.dtype(space.dtype)
        return lambda action: (np.asarray(action, dtype=np.int64) + start).astype(dtype)
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        raise UnsupportedSpaceError(
            f"gymnasium action space {space!r} ({type(space).__name__}) is not supported: agents act in "
            "Discrete, Box, MultiDiscrete or MultiBinary spaces"
        )
    dtype = np.dtype(space.dtype)
    return lambda action: np.asarray(action, dtype=dtype)


class GymnasiumToDmEnv(dm_env.Environment):
    """A ``dm_env.Environment`` view of a (single, non-vectorised) gymnasium env.

    Observations match ``observation_spec()`` exactly (float64 is delivered as
    float32; Dict and Tuple spaces as dicts and tuples of arrays); rewards and discounts are ``np.float32`` scalars. ``step`` on a
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

    def checkpoint_state(self) -> dict[str, Any] | None:
        """For checkpoints, between episodes (after LAST, or before the first reset): the environment's random
        generator, which is all that decides how a gymnasium classic-control or toy-text episode
        starts; None mid-episode, when the simulator's own state would be needed too, and for an
        ALE game, whose emulator draws sticky actions from a generator of its own."""
        if not self._reset_next_step or type(self._gym_env.unwrapped).__module__.startswith("ale_py"):
            return None
        return {"np_random": self._gym_env.unwrapped.np_random.bit_generator.state,
                "seed_on_next_reset": self._seed_on_next_reset}

    def restore_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Restores ``checkpoint_state`` output: the next ``reset`` starts the episode the saved env would have."""
        if not state["seed_on_next_reset"]:
            self._gym_env.reset(seed=0)  # Creates the generator (and the env's lazy state) to overwrite.
            self._gym_env.unwrapped.np_random.bit_generator.state = state["np_random"]
        self._seed_on_next_reset = bool(state["seed_on_next_reset"])
        self._reset_next_step = True

    def render(self) -> Any:
        """gymnasium's ``render()``: an RGB frame (uint8 [H, W, 3]) for an env made with
        ``render_mode='rgb_array'``, a window for ``'human'``, None without a render mode."""
        return self._gym_env.render()

    @property
    def max_episode_steps(self) -> int | None:
        """The registered time limit in steps (gymnasium's ``max_episode_steps``), None without one."""
        spec = self._gym_env.spec
        return None if spec is None else spec.max_episode_steps

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

    def observation_spec(self) -> SpecNest:
        return self._observation_spec

    def action_spec(self) -> SpecNest:
        return self._action_spec

    def reward_spec(self) -> specs.Array:
        return _REWARD_SPEC

    def discount_spec(self) -> specs.BoundedArray:
        return _DISCOUNT_SPEC

    def close(self) -> None:
        self._gym_env.close()
