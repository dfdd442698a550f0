"""Tests for dmc:<domain>-<task> (distrl/envs/dmc.py) and gymnasium's MuJoCo envs (real MuJoCo)."""

from __future__ import annotations

import os
import subprocess
import sys

# dm_control picks its OpenGL backend once, at import; EGL renders without a display.
os.environ.setdefault("MUJOCO_GL", "egl")

import dm_env  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from distrl.envs import (  # noqa: E402
    DmControlEnvironment,
    ValidatingWrapper,
    make_environment,
    reward_threshold,
)

suite = pytest.importorskip(
    "dm_control.suite", reason="the dmc extra (dm-control) is not installed"
)


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path, monkeypatch):
    # MuJoCo writes warnings to MUJOCO_LOG.TXT in the working directory.
    monkeypatch.chdir(tmp_path)


def test_cartpole_specs_and_a_step():
    env = make_environment("dmc:cartpole-balance", seed=0)
    assert isinstance(env, ValidatingWrapper)
    assert env.name == "dmc:cartpole-balance" and reward_threshold(env) is None
    observation_spec = env.observation_spec()
    assert type(observation_spec) is dict and list(observation_spec) == ["position", "velocity"]
    assert [(s.shape, s.dtype) for s in observation_spec.values()] == [
        ((3,), np.float32),
        ((2,), np.float32),
    ]
    action_spec = env.action_spec()
    suite_spec = env.suite_environment.action_spec()
    assert action_spec.dtype == np.float32 and action_spec.shape == suite_spec.shape == (1,)
    assert np.all(action_spec.minimum.astype(np.float64) >= suite_spec.minimum)
    assert np.all(action_spec.maximum.astype(np.float64) <= suite_spec.maximum)
    assert env.reward_spec().dtype == env.discount_spec().dtype == np.float32
    timestep = env.reset()
    assert type(timestep.observation) is dict
    assert all(v.dtype == np.float32 for v in timestep.observation.values())
    timestep = env.step(np.array([0.5], np.float32))
    assert timestep.step_type == dm_env.StepType.MID
    assert type(timestep.reward) is np.float32 and 0.0 <= timestep.reward <= 1.0
    assert type(timestep.discount) is np.float32 and timestep.discount == 1.0
    env.close()


def test_walker_scalar_observation_leaves_keep_their_shape():
    env = make_environment("dmc:walker-walk", seed=0)
    assert env.observation_spec()["height"].shape == ()
    timestep = env.step(np.zeros(6, np.float32))  # a fresh env: this step resets
    assert timestep.first() and timestep.observation["height"].shape == ()
    env.step(np.zeros(6, np.float32))  # validated
    env.close()


def test_seeding_is_reproducible():
    def first_observation(seed):
        env = make_environment("dmc:cartpole-swingup", seed=seed)
        observation = env.reset().observation
        env.close()
        return observation

    a, b, c = first_observation(3), first_observation(3), first_observation(4)
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert not all(np.array_equal(a[key], c[key]) for key in a)


def test_action_repeat_sums_rewards_of_the_suite_steps():
    env = make_environment("dmc:cartpole-swingup?action_repeat=3", seed=5)
    reference = suite.load("cartpole", "swingup", task_kwargs={"random": 5})
    env.reset()
    reference.reset()
    action = np.array([1.0], np.float32)
    for _ in range(4):
        timestep = env.step(action)
        steps = [reference.step(action.astype(np.float64)) for _ in range(3)]
        rewards = [step.reward for step in steps]
        assert timestep.reward == np.float32(sum(rewards)) and min(rewards) > 0
        for key, value in steps[-1].observation.items():
            np.testing.assert_array_equal(timestep.observation[key], value.astype(np.float32))


def test_time_limit_is_a_truncation():
    env = make_environment("dmc:cartpole-balance?action_repeat=8", seed=0)
    timestep, steps = env.reset(), 0
    while not timestep.last():
        timestep = env.step(np.zeros(1, np.float32))
        steps += 1
    assert steps == 1000 // 8  # the suite's 1000 control steps
    assert timestep.step_type == dm_env.StepType.LAST and timestep.discount == 1.0
    assert env.step(np.zeros(1, np.float32)).first()
    env.close()


def _make_pixels(name):
    try:
        return make_environment(name, seed=0)
    except RuntimeError as error:
        if "MUJOCO_GL" not in str(error):
            raise
        pytest.skip(f"MuJoCo cannot render on this machine: {error}")


def test_pixels_observation():
    env = _make_pixels("dmc:cartpole-swingup?pixels=true")
    spec = env.observation_spec()
    assert list(spec) == ["pixels"] and (spec["pixels"].shape, spec["pixels"].dtype) == (
        (84, 84, 3),
        np.uint8,
    )
    first = env.reset().observation["pixels"]
    assert first.shape == (84, 84, 3) and first.dtype == np.uint8 and first.std() > 0
    for _ in range(5):
        timestep = env.step(np.ones(1, np.float32))
    assert not np.array_equal(timestep.observation["pixels"], first)  # the cart moved
    env.close()


def test_pixels_frame_stack():
    env = _make_pixels("dmc:cartpole-swingup?pixels=true&frame_stack=3&action_repeat=2")
    assert env.observation_spec()["pixels"].shape == (3, 84, 84, 3)
    stack = env.reset().observation["pixels"]
    assert stack.shape == (3, 84, 84, 3)
    assert np.array_equal(stack[0], stack[2])  # padded with the first frame
    previous = stack
    stack = env.step(np.ones(1, np.float32)).observation["pixels"]
    assert np.array_equal(stack[:2], previous[1:])  # shifted by one, oldest first
    assert not np.array_equal(stack[2], previous[2])
    env.close()


@pytest.mark.parametrize(
    "name, message",
    [
        ("dmc:cartpole-balance?frame_stack=2", "frame_stack needs pixels=true"),
        ("dmc:cartpole-balance?action_repeat=0", "expected an integer >= 1"),
        ("dmc:cartpole-balance?colour=red", "unknown dmc option 'colour'"),
        ("dmc:cartpole-swingupp", "did you mean cartpole-swingup"),
        ("dmc:cartpole", "expected 'dmc:<domain>-<task>'"),
    ],
)
def test_bad_names_raise_value_errors(name, message):
    with pytest.raises(ValueError, match=message):
        make_environment(name, seed=0)


def test_missing_dm_control_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dm_control", None)
    with pytest.raises(
        ImportError,
        match=r"dmc:cartpole-balance needs dm-control and mujoco: pip install -e '\.\[dmc\]'",
    ):
        make_environment("dmc:cartpole-balance", seed=0)


def test_direct_construction():
    env = DmControlEnvironment("cartpole", "balance", seed=1, action_repeat=2)
    assert env.reset().first() and env.step(np.zeros(1, np.float32)).mid()
    env.close()


# ---------------------------------------------------------------------------
# gymnasium's MuJoCo environments (the mujoco extra).


def test_gym_half_cheetah_steps():
    pytest.importorskip("imageio", reason="the mujoco extra (imageio) is not installed")
    env = make_environment("gym:HalfCheetah-v5", seed=0)
    assert env.observation_spec().shape == (17,) and env.action_spec().shape == (6,)
    env.reset()
    for _ in range(20):
        timestep = env.step(np.full(6, 0.5, np.float32))
    assert timestep.mid() and timestep.observation.dtype == np.float32
    env.close()


def test_missing_mujoco_names_the_extra():
    # A fresh process: here gymnasium's MuJoCo modules may already be imported.
    code = (
        "import sys; sys.modules['mujoco'] = None\n"
        "from distrl.envs import make_environment\n"
        "make_environment('gym:HalfCheetah-v5', seed=0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode != 0
    assert "gym:HalfCheetah-v5 needs mujoco and imageio: pip install -e '.[mujoco]'" in out.stderr
