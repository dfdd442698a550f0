"""Tests for the gymnasium adapter, validation, the registry and the fakes."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from typing import Any

import dm_env
import gymnasium
import numpy as np
import pytest
from dm_env import specs

from distrl.envs import (
    EnvironmentValidationError,
    EnvironmentWrapper,
    GridWorld,
    GymnasiumToDmEnv,
    ValidatingWrapper,
    make_environment,
    reward_threshold,
)
from distrl.envs.fakes import ContinuousFake, FakeEnvironment
from distrl.envs.gym_adapter import UnsupportedSpaceError, space_to_spec

FIRST, MID, LAST = dm_env.StepType.FIRST, dm_env.StepType.MID, dm_env.StepType.LAST


class ScriptedGymEnv(gymnasium.Env):
    """A gymnasium env that ends after ``length`` steps with the given flags.

    Observations are float64 ``[t, -t]`` at step t (or ``observation_fn(t)``),
    rewards are t, and every reset seed and action received is recorded.
    """

    def __init__(
        self,
        length: int = 3,
        terminated: bool = True,
        truncated: bool = False,
        action_space: gymnasium.Space | None = None,
        observation_fn: Callable[[int], Any] | None = None,
        observation_space: gymnasium.Space | None = None,
    ):
        self.observation_space = observation_space or gymnasium.spaces.Box(-10.0, 10.0, (2,), np.float64)
        self.action_space = action_space or gymnasium.spaces.Discrete(3)
        self.length = length
        self.terminated = terminated
        self.truncated = truncated
        self.observation_fn = observation_fn or (lambda t: np.array([t, -t], np.float64))
        self.t = 0
        self.reset_seeds: list[int | None] = []
        self.actions: list[Any] = []
        self.closed = False

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.reset_seeds.append(seed)
        self.t = 0
        return self.observation_fn(0), {}

    def step(self, action):
        self.actions.append(action)
        self.t += 1
        done = self.t >= self.length
        return (
            self.observation_fn(self.t),
            float(self.t),
            self.terminated and done,
            self.truncated and done,
            {},
        )

    def close(self):
        self.closed = True


def run_episode(env: dm_env.Environment, action: Any) -> list[dm_env.TimeStep]:
    timesteps = [env.reset()]
    while not timesteps[-1].last():
        timesteps.append(env.step(action))
    return timesteps


def assert_conforms(env: dm_env.Environment, timestep: dm_env.TimeStep) -> None:
    env.observation_spec().validate(timestep.observation)
    if timestep.first():
        assert timestep.reward is None and timestep.discount is None
    else:
        env.reward_spec().validate(timestep.reward)
        env.discount_spec().validate(timestep.discount)


# --------------------------------------------------------------------------
# GymnasiumToDmEnv


def test_episode_step_types_rewards_and_termination_discount():
    env = GymnasiumToDmEnv(ScriptedGymEnv(length=3, terminated=True), seed=0)
    timesteps = run_episode(env, np.int64(1))
    assert [ts.step_type for ts in timesteps] == [FIRST, MID, MID, LAST]
    assert [ts.reward for ts in timesteps[1:]] == [1.0, 2.0, 3.0]
    assert [ts.discount for ts in timesteps[1:]] == [1.0, 1.0, 0.0]
    for t, ts in enumerate(timesteps):
        assert_conforms(env, ts)
        assert ts.observation.dtype == np.float32
        np.testing.assert_array_equal(ts.observation, [t, -t])
    for ts in timesteps[1:]:
        assert type(ts.reward) is np.float32 and type(ts.discount) is np.float32


@pytest.mark.parametrize(
    "terminated, truncated, discount",
    [(True, False, 0.0), (False, True, 1.0), (True, True, 0.0)],
    ids=["terminated", "truncated", "both-termination-wins"],
)
def test_episode_end_discount(terminated, truncated, discount):
    env = GymnasiumToDmEnv(ScriptedGymEnv(2, terminated, truncated), seed=0)
    env.reset()
    assert env.step(0).mid()
    last = env.step(0)
    assert last.last() and last.discount == discount


def test_step_on_fresh_env_and_after_last_starts_new_episode():
    gym_env = ScriptedGymEnv(length=1)
    env = GymnasiumToDmEnv(gym_env, seed=5)
    first = env.step(np.int64(2))
    assert first.first() and first.reward is None and first.discount is None
    assert gym_env.actions == []  # the action was ignored
    assert env.step(np.int64(2)).last()
    again = env.step(np.int64(1))
    assert again.first()
    assert gym_env.actions == [2]
    assert env.step(np.int64(0)).last()


def test_seed_goes_to_first_reset_only_and_seeds_action_space():
    gym_env = ScriptedGymEnv(length=1)
    env = GymnasiumToDmEnv(gym_env, seed=7)
    run_episode(env, 0)
    run_episode(env, 0)
    env.step(0)  # auto-reset after LAST
    assert gym_env.reset_seeds == [7, None, None]
    spaces_ = [GymnasiumToDmEnv(ScriptedGymEnv(), seed=s).gym_env.action_space for s in (3, 3, 4)]
    samples = [[space.sample() for _ in range(20)] for space in spaces_]
    assert samples[0] == samples[1]
    assert samples[0] != samples[2]


def test_box_float64_becomes_float32_bounded_array_and_discrete_becomes_discrete_array():
    env = GymnasiumToDmEnv(ScriptedGymEnv(), seed=0)
    obs_spec = env.observation_spec()
    assert isinstance(obs_spec, specs.BoundedArray)
    assert obs_spec.dtype == np.float32 and obs_spec.shape == (2,)
    assert obs_spec.minimum.dtype == np.float32 and obs_spec.maximum.dtype == np.float32
    np.testing.assert_array_equal(obs_spec.minimum, [-10, -10])
    np.testing.assert_array_equal(obs_spec.maximum, [10, 10])
    action_spec = env.action_spec()
    assert isinstance(action_spec, specs.DiscreteArray)
    assert action_spec.num_values == 3 and action_spec.dtype == np.int64
    assert env.reward_spec() == specs.Array((), np.float32, "reward")
    discount_spec = env.discount_spec()
    assert discount_spec.dtype == np.float32 and discount_spec.shape == ()
    assert discount_spec.minimum == 0.0 and discount_spec.maximum == 1.0


def test_box_keeps_non_float64_dtypes():
    gym_env = ScriptedGymEnv(observation_fn=lambda t: np.full((2, 2), t, np.uint8))
    gym_env.observation_space = gymnasium.spaces.Box(0, 255, (2, 2), np.uint8)
    env = GymnasiumToDmEnv(gym_env, seed=0)
    assert env.observation_spec().dtype == np.uint8
    assert env.reset().observation.dtype == np.uint8


def test_discrete_start_is_offset_to_zero():
    gym_env = ScriptedGymEnv(action_space=gymnasium.spaces.Discrete(3, start=-1))
    env = GymnasiumToDmEnv(gym_env, seed=0)
    assert env.action_spec().num_values == 3
    env.reset()
    env.step(np.int64(0))
    env.step(np.array(2))
    assert gym_env.actions == [-1, 1]


def test_discrete_observation_with_start_is_offset():
    gym_env = ScriptedGymEnv(observation_fn=lambda t: np.int64(t + 5))
    gym_env.observation_space = gymnasium.spaces.Discrete(10, start=5)
    env = GymnasiumToDmEnv(gym_env, seed=0)
    assert env.observation_spec() == specs.DiscreteArray(10, np.int64, "observation")
    timesteps = run_episode(env, 0)
    assert [int(ts.observation) for ts in timesteps] == [0, 1, 2, 3]
    for ts in timesteps:
        assert_conforms(env, ts)


@pytest.mark.parametrize(
    "space",
    [gymnasium.spaces.Text(5), gymnasium.spaces.Dict({"a": gymnasium.spaces.Discrete(2)}),
     gymnasium.spaces.Tuple((gymnasium.spaces.Discrete(2),))],
    ids=["Text", "Dict", "Tuple"],
)
def test_unsupported_action_space_raises_naming_it(space):
    gym_env = ScriptedGymEnv(action_space=space)
    with pytest.raises(UnsupportedSpaceError, match=type(space).__name__):
        GymnasiumToDmEnv(gym_env, seed=0)


def test_multidiscrete_multibinary_dict_and_tuple_spaces_become_specs_and_nests():
    spaces = gymnasium.spaces
    space = spaces.Dict({
        "position": spaces.Box(-1.0, 1.0, (2,), np.float64),
        "cells": spaces.MultiDiscrete([3, 4], start=[1, 0]),
        "flags": spaces.MultiBinary(3),
        "pair": spaces.Tuple((spaces.Discrete(5, start=2), spaces.Box(0, 255, (2, 2), np.uint8))),
    })
    spec = space_to_spec(space, "observation")
    assert set(spec) == {"position", "cells", "flags", "pair"}
    assert spec["position"].dtype == np.float32
    assert (spec["cells"].dtype, spec["cells"].minimum.tolist(), spec["cells"].maximum.tolist()) == (
        np.int64, [0, 0], [2, 3])
    assert (spec["flags"].dtype, spec["flags"].shape) == (np.int8, (3,))
    assert spec["pair"][0].num_values == 5 and spec["pair"][1].dtype == np.uint8
    sample = space.sample()
    env = GymnasiumToDmEnv(ScriptedGymEnv(observation_space=space), seed=0)
    converted = env._convert_observation(sample)
    assert converted["cells"].tolist() == (np.asarray(sample["cells"]) - [1, 0]).tolist()
    assert int(converted["pair"][0]) == int(sample["pair"][0]) - 2
    assert converted["position"].dtype == np.float32 and converted["flags"].dtype == np.int8


def test_multidiscrete_actions_are_shifted_back_by_start():
    space = gymnasium.spaces.MultiDiscrete([3, 4], start=[1, 0])
    env = GymnasiumToDmEnv(ScriptedGymEnv(action_space=space), seed=0)
    assert env.action_spec().maximum.tolist() == [2, 3]
    assert env._convert_action(np.array([2, 3])).tolist() == [3, 3]
    assert space.contains(env._convert_action(np.array([0, 0])))


def test_float64_box_actions_clipped_at_the_spec_bounds_stay_in_the_env_space():
    space = gymnasium.spaces.Box(-0.1, 0.1, (2,), np.float64)
    env = GymnasiumToDmEnv(ScriptedGymEnv(action_space=space), seed=0)
    spec = env.action_spec()
    for bound in (spec.minimum, spec.maximum):
        assert space.contains(env._convert_action(np.clip(np.full(2, 5.0, np.float32) * np.sign(bound), spec.minimum,
                                                          spec.maximum)))


def test_cartpole_values_match_specs_and_metadata():
    env = GymnasiumToDmEnv(gymnasium.make("CartPole-v1"), seed=0)
    assert env.name == "CartPole-v1"
    assert env.reward_threshold == 475.0
    for _ in range(2):
        timesteps = run_episode(env, np.int64(1))  # always push right: ends fast
        assert timesteps[-1].discount == 0.0
        for ts in timesteps:
            assert_conforms(env, ts)
    env.close()


def test_pendulum_time_limit_truncates_with_discount_one():
    env = GymnasiumToDmEnv(gymnasium.make("Pendulum-v1"), seed=0)
    spec = env.action_spec()
    assert isinstance(spec, specs.BoundedArray) and spec.dtype == np.float32
    assert spec.shape == (1,) and spec.minimum[0] == -2.0 and spec.maximum[0] == 2.0
    assert env.reward_threshold is None
    timesteps = run_episode(env, np.array([0.5], np.float32))
    assert len(timesteps) == 201
    assert timesteps[-1].discount == 1.0
    for ts in timesteps[::20]:
        assert_conforms(env, ts)


def _cartpole_observations(seed: int | None, episodes: int = 2) -> np.ndarray:
    env = GymnasiumToDmEnv(gymnasium.make("CartPole-v1"), seed=seed)
    rng = np.random.default_rng(0)  # the same action sequence for every env
    observations = []
    for _ in range(episodes):
        ts = env.reset()
        observations.append(ts.observation)
        for _ in range(10):
            ts = env.step(rng.integers(2))
            observations.append(ts.observation)
            if ts.last():
                break
    return np.stack(observations)


def test_same_seed_same_trajectory_different_seeds_differ():
    a, b = _cartpole_observations(1), _cartpole_observations(1)
    np.testing.assert_array_equal(a, b)
    c = _cartpole_observations(2)
    assert a.shape != c.shape or not np.array_equal(a, c)
    # The RNG stream continues across resets: episode 2 does not repeat episode 1.
    one_episode = _cartpole_observations(1, episodes=1)
    assert not np.array_equal(a[len(one_episode)], a[0])


def test_unseeded_adapter_runs():
    env = GymnasiumToDmEnv(gymnasium.make("CartPole-v1"), seed=None)
    assert run_episode(env, np.int64(0))[-1].last()


def test_close_closes_gym_env():
    gym_env = ScriptedGymEnv()
    GymnasiumToDmEnv(gym_env, seed=0).close()
    assert gym_env.closed


# --------------------------------------------------------------------------
# ValidatingWrapper


class Corrupt(EnvironmentWrapper):
    """Replaces a field of every non-FIRST timestep (or of reset's) to inject faults."""

    def __init__(self, environment, field: str, value: Any, on_reset: bool = False):
        super().__init__(environment)
        self._field, self._value, self._on_reset = field, value, on_reset

    def reset(self):
        timestep = self._environment.reset()
        return timestep._replace(**{self._field: self._value}) if self._on_reset else timestep

    def step(self, action):
        timestep = self._environment.step(action)
        if timestep.first():
            return timestep
        return timestep._replace(**{self._field: self._value})


def test_validating_wrapper_passes_valid_episodes_through_unchanged():
    inner = GymnasiumToDmEnv(gymnasium.make("CartPole-v1"), seed=0)
    env = ValidatingWrapper(inner, "gym:CartPole-v1")
    reference = GymnasiumToDmEnv(gymnasium.make("CartPole-v1"), seed=0)
    for _ in range(2):
        for ts, ref in zip(
            run_episode(env, np.int64(0)), run_episode(reference, np.int64(0)), strict=True
        ):
            assert ts.step_type == ref.step_type and ts.reward == ref.reward
            np.testing.assert_array_equal(ts.observation, ref.observation)
    # Attributes of the wrapped env are reachable through the wrapper.
    assert env.gym_env is inner.gym_env and env.name == "CartPole-v1"
    assert env.environment is inner


def test_nan_observation_is_reported_with_env_field_and_value():
    def observation(t):
        return np.array([t, np.nan if t == 2 else 0.0])

    env = ValidatingWrapper(
        GymnasiumToDmEnv(ScriptedGymEnv(5, observation_fn=observation), 0), "nanny"
    )
    env.reset()
    env.step(0)
    with pytest.raises(
        EnvironmentValidationError, match=r"'nanny'.*observation.*non-finite.*nan"
    ) as info:
        env.step(0)
    assert isinstance(info.value, ValueError)


def test_wrong_observation_shape_is_reported():
    def observation(t):
        return np.zeros(3 if t else 2)

    env = ValidatingWrapper(
        GymnasiumToDmEnv(ScriptedGymEnv(observation_fn=observation), 0), "shapes"
    )
    env.reset()
    with pytest.raises(
        EnvironmentValidationError, match=r"'shapes'.*observation.*shape \(2,\).*shape \(3,\)"
    ):
        env.step(0)


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        (
            "observation",
            np.zeros((), np.float64),
            r"observation: expected dtype float32, got dtype float64",
        ),
        ("observation", np.zeros((), np.float32) + np.inf, r"observation: non-finite"),
        ("reward", 1.0, r"reward: expected dtype float32, got dtype float64"),
        ("reward", np.float32(np.nan), r"reward: non-finite"),
        ("reward", None, r"reward: expected dtype float32, got dtype object; value None"),
        (
            "discount",
            np.float32(1.5),
            r"discount: outside the spec bounds \[0\., 1\.\]; value 1\.5",
        ),
        ("discount", np.ones(2, np.float32), r"discount: expected shape \(\), got shape \(2,\)"),
    ],
)
def test_bad_step_fields_are_reported(field, value, pattern):
    env = ValidatingWrapper(Corrupt(FakeEnvironment(3), field, value), "fake")
    env.reset()
    with pytest.raises(EnvironmentValidationError, match=r"environment 'fake': invalid " + pattern):
        env.step(np.int64(0))


def test_bad_reset_observation_is_reported():
    env = ValidatingWrapper(Corrupt(FakeEnvironment(3), "observation", np.int64(0), True), "fake")
    with pytest.raises(
        EnvironmentValidationError, match=r"observation: expected dtype float32, got dtype int64"
    ):
        env.reset()


def test_step_types_are_checked():
    env = ValidatingWrapper(Corrupt(FakeEnvironment(3), "step_type", MID, on_reset=True), "fake")
    with pytest.raises(EnvironmentValidationError, match=r"reset\(\) must return a FIRST"):
        env.reset()
    env = ValidatingWrapper(Corrupt(FakeEnvironment(3), "step_type", FIRST), "fake")
    env.reset()
    with pytest.raises(EnvironmentValidationError, match=r"middle of an episode"):
        env.step(np.int64(0))


@pytest.mark.parametrize(
    "action, pattern",
    [
        (np.int64(2), r"outside the spec bounds \[0, 1\]; value 2"),
        (np.int64(-1), r"outside the spec bounds \[0, 1\]; value -1"),
        (5, r"outside the spec bounds \[0, 1\]; value 5"),
        (np.float32(1.0), r"expected an integer dtype like int64, got dtype float32"),
        (np.array([1]), r"expected shape \(\), got shape \(1,\)"),
    ],
)
def test_bad_discrete_action_is_reported(action, pattern):
    env = make_environment("gym:CartPole-v1", seed=0)
    env.reset()
    with pytest.raises(
        EnvironmentValidationError, match=r"'gym:CartPole-v1': invalid action: " + pattern
    ):
        env.step(action)


def test_discrete_action_of_any_integer_width_is_accepted():
    env = make_environment("gym:CartPole-v1", seed=0)
    env.reset()
    for action in (np.int32(1), np.uint8(0), 1, np.array(0, np.int16)):
        assert env.step(action).mid()


@pytest.mark.parametrize(
    "action, pattern",
    [
        (
            np.array([3.0], np.float32),
            r"outside the spec bounds \[\[-2\.\], \[2\.\]\]; value \[3\.\]",
        ),
        (np.array([-2.5]), r"outside the spec bounds .*value \[-2\.5\]"),
        (np.array([np.nan], np.float32), r"non-finite .*value \[nan\]"),
        (np.zeros(2, np.float32), r"expected shape \(1,\), got shape \(2,\)"),
        (np.array([1], np.int64), r"expected a float dtype like float32, got dtype int64"),
    ],
)
def test_bad_continuous_action_is_reported(action, pattern):
    env = make_environment("gym:Pendulum-v1", seed=0)
    env.reset()
    with pytest.raises(
        EnvironmentValidationError, match=r"'gym:Pendulum-v1': invalid action: " + pattern
    ):
        env.step(action)


def test_continuous_action_bounds_are_inclusive_and_float64_accepted():
    env = make_environment("gym:Pendulum-v1", seed=0)
    env.reset()
    for action in (np.array([2.0], np.float32), np.array([-2.0]), [0.0]):
        assert env.step(action).mid()


def test_action_starting_a_new_episode_is_not_checked():
    env = ValidatingWrapper(FakeEnvironment(1), "fake")
    assert env.step(None).first()  # fresh env: the action is ignored
    assert env.step(np.int64(0)).last()
    assert env.step("ignored").first()
    with pytest.raises(EnvironmentValidationError, match="action"):
        env.step(np.int64(7))


class DictObservationEnv(FakeEnvironment):
    """FakeEnvironment with a dict observation {'position': (2,) float32, 'index': () int64}."""

    def __init__(self, bad_position: np.ndarray | None = None, drop_key: bool = False):
        super().__init__(episode_length=3)
        self._bad_position, self._drop_key = bad_position, drop_key

    def _observation(self):
        observation = {
            "position": np.full(2, self._step, np.float32),
            "index": np.int64(self._step),
        }
        if self._step and self._bad_position is not None:
            observation["position"] = self._bad_position
        if self._step and self._drop_key:
            del observation["index"]
        return observation

    def observation_spec(self):
        return {
            "position": specs.Array((2,), np.float32, "position"),
            "index": specs.Array((), np.int64, "index"),
        }


def test_nested_observations_are_checked_per_leaf():
    env = ValidatingWrapper(DictObservationEnv(), "dicts")
    assert len(run_episode(env, np.int64(0))) == 4
    env = ValidatingWrapper(
        DictObservationEnv(bad_position=np.array([0.0, np.inf], np.float32)), "dicts"
    )
    env.reset()
    with pytest.raises(
        EnvironmentValidationError, match=r"'dicts': invalid observation\['position'\]: non-finite"
    ):
        env.step(np.int64(0))
    env = ValidatingWrapper(DictObservationEnv(drop_key=True), "dicts")
    env.reset()
    with pytest.raises(EnvironmentValidationError, match=r"observation: structure does not match"):
        env.step(np.int64(0))


def test_large_float_observations_use_the_vectorised_path():
    obs = np.zeros((3, 10, 10), np.float32)
    bad = obs.copy()
    bad[2, 9, 9] = np.nan
    env = ValidatingWrapper(
        Corrupt(FakeEnvironment(3, obs_shape=(3, 10, 10)), "observation", bad), "big"
    )
    assert env.reset().observation.shape == (3, 10, 10)
    with pytest.raises(EnvironmentValidationError, match="non-finite"):
        env.step(np.int64(0))


def test_float64_overflowing_sum_is_not_a_false_alarm():
    spec = specs.Array((2,), np.float64, "observation")
    from distrl.envs.validation import make_check

    check = make_check(spec, "env", "observation")
    check(np.array([1e308, 1e308]))
    with pytest.raises(EnvironmentValidationError):
        check(np.array([1e308, np.inf]))


# --------------------------------------------------------------------------
# Registry


def test_registry_gym_form_wraps_in_validation_by_default():
    env = make_environment("gym:CartPole-v1", seed=3)
    assert isinstance(env, ValidatingWrapper)
    assert isinstance(env.environment, GymnasiumToDmEnv)
    assert reward_threshold(env) == 475.0
    assert run_episode(env, np.int64(0))[-1].last()
    assert isinstance(make_environment("gym:CartPole-v1", seed=3, validate=False), GymnasiumToDmEnv)


def test_registry_gym_form_is_seeded():
    a = make_environment("gym:CartPole-v1", seed=11).reset().observation
    b = make_environment("gym:CartPole-v1", seed=11).reset().observation
    c = make_environment("gym:CartPole-v1", seed=12).reset().observation
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_registry_gridworld_defaults():
    env = make_environment("gridworld:simple", seed=0)
    assert reward_threshold(env) is None
    assert isinstance(env.environment, GridWorld)
    assert env.observation_spec().shape == (4,)
    timesteps = run_episode(env, np.int64(0))  # walk up into the wall until truncation
    assert len(timesteps) == 201
    assert timesteps[-1].last() and timesteps[-1].discount == np.float32(0.9)


def test_registry_gridworld_options():
    env = make_environment("gridworld:obstacle?observation=grid&max_episode_len=7", seed=0)
    assert env.observation_spec().shape == (3, 9, 10)
    assert len(run_episode(env, np.int64(0))) == 8
    env = make_environment(
        "gridworld:random_goal?observation=STATE_INDEX&max_episode_len=none", seed=0
    )
    assert env.observation_spec().num_values == 90
    assert env.environment._max_episode_len is None


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("gridworld:simple?colour=red", r"unknown gridworld option 'colour'"),
        ("gridworld:simple?observation=pixels", r"unknown gridworld observation type 'pixels'"),
        ("gridworld:simple?max_episode_len=0", r"max_episode_len must be a positive integer"),
        ("gridworld:simple?max_episode_len=ten", r"max_episode_len must be a positive integer"),
        ("gridworld:simple?max_episode_len=5&max_episode_len=6", r"given twice"),
        ("gridworld:maze", r"unknown gridworld task 'maze'"),
        ("CartPole-v1", r"expected '<kind>:<what>'"),
        ("gym:", r"expected '<kind>:<what>'"),
        ("gym:NoSuchEnvironment-v0", r"gymnasium cannot make 'NoSuchEnvironment-v0'"),
        ("no_such_distrl_module.sub:make", r"no module named 'no_such_distrl_module.sub'"),
        ("distrl.envs.fakes:no_such_factory", r"has no attribute 'no_such_factory'"),
        ("distrl.envs.registry:ACCEPTED_FORMS", r"is not callable"),
    ],
)
def test_registry_errors_name_the_problem_and_list_forms(name, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        make_environment(name, seed=0)
    message = str(info.value)
    assert repr(name) in message
    assert "gym:<gymnasium id>" in message and "gridworld:<task>" in message
    assert "<module.path>:<factory>" in message


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    name = "distrl_test_env_factories"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from distrl.envs.fakes import FakeEnvironment

            seeds = []

            def make(seed):
                seeds.append(seed)
                return FakeEnvironment(episode_length=2)

            def not_an_env(seed):
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_registry_factory_form(factory_module):
    env = make_environment(f"{factory_module}:make", seed=9)
    assert isinstance(env, ValidatingWrapper) and isinstance(env.environment, FakeEnvironment)
    assert sys.modules[factory_module].seeds == [9]
    assert reward_threshold(env) is None
    assert len(run_episode(env, np.int64(0))) == 3


def test_registry_factory_must_return_an_environment(factory_module):
    with pytest.raises(
        TypeError, match=rf"{factory_module}:not_an_env returned int, expected a dm_env.Environment"
    ):
        make_environment(f"{factory_module}:not_an_env", seed=0)


# --------------------------------------------------------------------------
# Fakes


@pytest.mark.parametrize("terminate, last_discount", [(True, 0.0), (False, 1.0)])
def test_fake_environment_script(terminate, last_discount):
    env = FakeEnvironment(3, obs_shape=(2,), terminate=terminate, discount=0.5)
    timesteps = run_episode(env, np.int64(1))
    assert [ts.step_type for ts in timesteps] == [FIRST, MID, MID, LAST]
    assert [ts.reward for ts in timesteps[1:]] == [1.0, 2.0, 3.0]
    assert [ts.discount for ts in timesteps[1:]] == [0.5, 0.5, last_discount]
    for k, ts in enumerate(timesteps):
        np.testing.assert_array_equal(ts.observation, [k, k])
        assert_conforms(env, ts)
    assert env.step(np.int64(0)).first()
    assert len(env.actions) == 4


def test_fakes_follow_dm_env_auto_reset_and_continuous_spec():
    env = ContinuousFake(2, action_dim=3)
    assert env.step(np.zeros(3, np.float32)).first()
    spec = env.action_spec()
    assert isinstance(spec, specs.BoundedArray) and spec.shape == (3,) and spec.dtype == np.float32
    validated = ValidatingWrapper(env, "continuous-fake")
    validated.reset()
    assert validated.step(np.ones(3, np.float32)).mid()
    with pytest.raises(EnvironmentValidationError, match="action"):
        validated.step(np.full(3, 1.5, np.float32))
