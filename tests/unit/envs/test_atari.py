"""Tests for atari:<Game> (distrl/envs/atari.py) and gym:ALE/... on the real ale-py emulator."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import dm_env
import numpy as np
import pytest

pytest.importorskip("ale_py", reason="the atari extra (ale-py) is not installed")
pytest.importorskip("cv2", reason="the atari extra (opencv-python-headless) is not installed")

from distrl.core import Actor  # noqa: E402
from distrl.environment_loop import EnvironmentLoop  # noqa: E402
from distrl.envs import (  # noqa: E402
    AtariEnvironment,
    ValidatingWrapper,
    make_environment,
    reward_threshold,
)

MID, LAST = dm_env.StepType.MID, dm_env.StepType.LAST


def _random_actions(num_values: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    while True:
        yield np.int64(rng.integers(num_values))


def test_pong_specs_and_steps():
    env = make_environment("atari:Pong", seed=0)
    assert isinstance(env, ValidatingWrapper)
    observation_spec, action_spec = env.observation_spec(), env.action_spec()
    assert (observation_spec.shape, observation_spec.dtype) == ((4, 84, 84), np.uint8)
    assert action_spec.num_values == 6 and action_spec.dtype == np.int64
    assert (env.reward_spec().dtype, env.discount_spec().dtype) == (np.float32, np.float32)
    assert env.name == "ALE/Pong-v5" and reward_threshold(env) is None
    assert env.repeat_action_probability == 0.0  # sticky actions off by default
    timestep = env.reset()
    assert timestep.first() and timestep.observation.shape == (4, 84, 84)
    # Frame stacking pads the episode start with copies of the first frame.
    assert all(np.array_equal(frame, timestep.observation[0]) for frame in timestep.observation)
    assert env.episode_score == 0.0
    for action in [0, 1, 2, 3, 4, 5] * 5:
        timestep = env.step(np.int64(action))
        assert timestep.observation.dtype == np.uint8 and timestep.reward.dtype == np.float32
    assert not np.array_equal(timestep.observation[0], timestep.observation[-1])  # the stack moves
    env.close()


def _trajectory(name: str, seed: int, steps: int = 60) -> list[np.ndarray]:
    env = make_environment(name, seed=seed)
    actions = _random_actions(env.action_spec().num_values)
    observations = [env.reset().observation]
    observations += [env.step(next(actions)).observation for _ in range(steps)]
    env.close()
    return observations


def test_seeding_is_reproducible_and_seed_dependent():
    first, again = _trajectory("atari:Pong", 7), _trajectory("atari:Pong", 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = _trajectory("atari:Pong", 8)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_options_reach_the_emulator():
    env = make_environment(
        "atari:Pong?sticky_actions=true&full_action_space=true&noop_max=0&frame_stack=2", seed=0
    )
    assert env.repeat_action_probability == 0.25
    assert env.gym_env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert env.action_spec().num_values == 18
    assert env.observation_spec().shape == (2, 84, 84)
    assert env.reset().observation.shape == (2, 84, 84)
    env.close()
    default = make_environment("atari:Pong", seed=0)
    assert default.gym_env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    default.close()


def test_clipped_rewards_game_score_and_life_loss_discounts():
    # SpaceInvaders under random play: aliens worth 5-30 points within ~100
    # steps, and 3 lives lost within ~300 (seeded, so deterministic).
    env = make_environment("atari:SpaceInvaders", seed=0)
    actions = _random_actions(env.action_spec().num_values)
    timestep = env.reset()
    lives = env.lives
    assert lives == 3
    score, clipped_sum, big_rewards, life_losses, steps = 0.0, 0.0, 0, 0, 0
    while not timestep.last() and steps < 5000:
        timestep = env.step(next(actions))
        steps += 1
        delta, score = env.episode_score - score, env.episode_score
        assert timestep.reward in (-1.0, 0.0, 1.0)
        assert timestep.reward == np.sign(delta)  # the clipped reward of the raw one
        big_rewards += delta > 1
        clipped_sum += float(timestep.reward)
        if env.lives < lives and not timestep.last():
            lives = env.lives
            life_losses += 1
            assert timestep.step_type == MID and timestep.discount == 0.0  # episode goes on
        elif not timestep.last():
            assert timestep.discount == 1.0
    assert timestep.last() and timestep.discount == 0.0  # game over: a termination
    assert big_rewards > 0 and life_losses >= 2
    assert env.episode_score > clipped_sum > 0
    env.reset()
    assert env.episode_score == 0.0
    env.close()


class RandomActor(Actor):
    def __init__(self, num_values: int) -> None:
        self._actions = _random_actions(num_values)

    def select_action(self, observation: Any) -> Any:
        return next(self._actions)

    def observe_first(self, timestep: dm_env.TimeStep) -> None:
        pass

    def observe(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
        pass

    def update(self, wait: bool = False) -> None:
        pass


def test_the_loop_reports_the_game_score_not_the_clipped_return():
    env = make_environment("atari:SpaceInvaders", seed=0)
    result = EnvironmentLoop(env, RandomActor(6), should_update=False).run_episode()
    assert result["completed"] == 1.0
    assert result["episode_return"] == env.episode_score and result["episode_return"] > 10
    env.close()


def test_frame_cap_is_a_truncation():
    env = AtariEnvironment("Pong", seed=0, max_num_frames_per_episode=200)
    timestep, steps = env.reset(), 0
    while not timestep.last():
        timestep = env.step(np.int64(0))
        steps += 1
    # 200 frames at 4 per step, less the no-op frames; Pong cannot end that soon.
    assert steps <= 50 and timestep.discount == 1.0
    assert env.step(np.int64(0)).first()
    env.close()


@pytest.mark.parametrize(
    "name, message",
    [
        ("atari:Pong?foo=1&bar=2", "unknown atari options 'foo', 'bar'"),
        ("atari:Pong?sticky_actions=maybe", "expected true or false"),
        ("atari:Pong?frame_stack=0", "expected an integer >= 1"),
        ("atari:Pong?noop_max=4&noop_max=5", "given twice"),
        ("atari:Pongg", "ALE/Pongg-v5"),
        ("atari:", "expected '<kind>:<what>'"),
    ],
)
def test_bad_names_raise_value_errors(name, message):
    with pytest.raises(ValueError, match=message):
        make_environment(name, seed=0)


def test_gym_ale_ids_give_the_raw_emulator():
    env = make_environment("gym:ALE/Pong-v5", seed=0)
    assert env.observation_spec().shape == (210, 160, 3) and env.action_spec().num_values == 6
    timestep = env.reset()
    for _ in range(10):
        timestep = env.step(np.int64(2))
    assert timestep.observation.dtype == np.uint8
    env.close()


def test_gym_ale_ids_register_the_namespace_in_a_fresh_process():
    # In this process the ALE ids may already be registered by other tests.
    code = (
        "from distrl.envs import make_environment\n"
        "print(make_environment('gym:ALE/Breakout-v5', seed=0).action_spec().num_values)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "4"


@pytest.mark.parametrize("name", ["atari:Pong", "gym:ALE/Pong-v5"])
def test_missing_ale_py_names_the_extra(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py now raises ImportError
    with pytest.raises(ImportError, match=r"needs ale-py: pip install -e '\.\[atari\]'") as error:
        make_environment(name, seed=0)
    assert str(error.value).startswith(f"{name} needs ale-py")


def test_missing_opencv_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"atari:Pong needs OpenCV.*\.\[atari\]"):
        make_environment("atari:Pong", seed=0)
