"""``distrl.bench.costly_env``: CartPole-v1 with a simulator's step cost, the same episodes."""

from __future__ import annotations

import math
import time

import gymnasium
import numpy as np
import pytest

from distrl.bench.costly_env import STEP_COST_S, SimulatorCost
from distrl.envs.registry import make_environment


def test_the_cost_changes_the_time_of_a_step_and_nothing_else():
    plain, costly = gymnasium.make("CartPole-v1"), SimulatorCost(gymnasium.make("CartPole-v1"), 0.002)
    first, _ = plain.reset(seed=3)
    second, _ = costly.reset(seed=3)
    np.testing.assert_array_equal(first, second)
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = int(rng.integers(2))
        started = time.perf_counter()
        costly_step = costly.step(action)
        assert time.perf_counter() - started >= 0.002  # a busy wait ends no earlier than its deadline
        plain_step = plain.step(action)
        np.testing.assert_array_equal(plain_step[0], costly_step[0])
        assert plain_step[1:4] == costly_step[1:4]
        if plain_step[2] or plain_step[3]:
            break


@pytest.mark.parametrize("cost", [-0.001, math.inf, math.nan])
def test_a_negative_or_endless_cost_is_refused(cost):
    with pytest.raises(ValueError, match="SimulatorCost.step_cost_s"):
        SimulatorCost(gymnasium.make("CartPole-v1"), cost)


def test_it_is_named_like_any_environment_and_seeded_like_gym_cartpole():
    costly = make_environment("distrl.bench.costly_env:costly_cartpole", seed=5)
    plain = make_environment("gym:CartPole-v1", seed=5)
    assert costly.observation_spec() == plain.observation_spec()
    assert costly.action_spec() == plain.action_spec()
    np.testing.assert_array_equal(costly.reset().observation, plain.reset().observation)
    started = time.perf_counter()
    step = costly.step(np.int64(0))
    assert time.perf_counter() - started >= STEP_COST_S
    np.testing.assert_array_equal(step.observation, plain.step(np.int64(0)).observation)
