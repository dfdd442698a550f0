"""Every observation and action kind x every agent that applies, a few hundred env steps through the CLI.

Each run must end with a ``distrl summary:`` line and exit 0; unsupported
combinations must exit 2 before training, naming the space and the agent.
The environments users bring are written as a module in the test's folder
(gymnasium envs registered on import, and a dm_env factory), the way a user
would make them importable.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

USER_ENVS = textwrap.dedent('''
    """Environments a user brings: gymnasium spaces and a dm_env with a dict spec."""
    import dm_env
    import gymnasium
    import numpy as np
    from dm_env import specs
    from gymnasium import spaces


    class DictObservation(gymnasium.Env):
        """Dict observation (a Box and a Discrete); Discrete or Box actions; 20-step episodes."""

        def __init__(self, continuous=False):
            self.observation_space = spaces.Dict({"position": spaces.Box(-1.0, 1.0, (2,), np.float64),
                                                  "room": spaces.Discrete(3)})
            self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32) if continuous else spaces.Discrete(2)
            self.t = 0

        def _obs(self):
            return {"position": self.np_random.uniform(-1, 1, 2), "room": int(self.t % 3)}

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self._obs(), {}

        def step(self, action):
            assert self.action_space.contains(action), action
            self.t += 1
            return self._obs(), 1.0, False, self.t >= 20, {}


    class MultiDiscreteActions(gymnasium.Env):
        """A vector observation; MultiDiscrete([3, 2]) actions; reward for matching the observed target."""

        def __init__(self):
            self.observation_space = spaces.MultiDiscrete([3, 2])
            self.action_space = spaces.MultiDiscrete([3, 2], start=[1, 0])
            self.t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            self.target = self.observation_space.sample()
            return self.target, {}

        def step(self, action):
            assert self.action_space.contains(action), action
            reward = float(np.sum(np.asarray(action) - [1, 0] == self.target))
            self.t += 1
            self.target = self.observation_space.sample()
            return self.target, reward, False, self.t >= 10, {}


    class TightBox(gymnasium.Env):
        """A float64 Box of actions in [-0.1, 0.1] that asserts every action is inside it."""

        def __init__(self):
            self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float64)
            self.action_space = spaces.Box(-0.1, 0.1, (2,), np.float64)
            self.t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(3), {}

        def step(self, action):
            assert self.action_space.contains(np.asarray(action)), action
            self.t += 1
            return self.np_random.uniform(-1, 1, 3), -float(np.sum(np.square(action))), False, self.t >= 25, {}


    gymnasium.register("DictObservation-v0", entry_point=DictObservation)
    gymnasium.register("DictObservationBox-v0", entry_point=DictObservation, kwargs={"continuous": True})
    gymnasium.register("MultiDiscreteActions-v0", entry_point=MultiDiscreteActions)
    gymnasium.register("TightBox-v0", entry_point=TightBox)


    class MultiBinaryObservation(gymnasium.Env):
        """MultiBinary(6) observations (flattened as 0/1 features), Discrete(2) actions."""

        def __init__(self):
            self.observation_space = spaces.MultiBinary(6)
            self.action_space = spaces.Discrete(2)
            self.t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self.observation_space.sample(), {}

        def step(self, action):
            self.t += 1
            return self.observation_space.sample(), float(action), False, self.t >= 12, {}


    gymnasium.register("MultiBinaryObservation-v0", entry_point=MultiBinaryObservation)


    class DictSpecEnv(dm_env.Environment):
        """A dm_env whose observation spec is a dict; 15-step episodes; Discrete or Box actions."""

        def __init__(self, seed, continuous=False):
            self.rng = np.random.default_rng(seed)
            self.continuous = continuous
            self.t = 0

        def _obs(self):
            return {"position": self.rng.uniform(-1, 1, 2).astype(np.float32),
                    "velocity": self.rng.uniform(-1, 1, 1).astype(np.float32)}

        def reset(self):
            self.t = 0
            return dm_env.restart(self._obs())

        def step(self, action):
            self.t += 1
            if self.t >= 15:
                return dm_env.truncation(np.float32(1.0), self._obs(), np.float32(1.0))
            return dm_env.transition(np.float32(1.0), self._obs(), np.float32(1.0))

        def observation_spec(self):
            return {"position": specs.Array((2,), np.float32, "position"),
                    "velocity": specs.Array((1,), np.float32, "velocity")}

        def action_spec(self):
            if self.continuous:
                return specs.BoundedArray((1,), np.float32, -1.0, 1.0, "action")
            return specs.DiscreteArray(2, name="action")

        def reward_spec(self):
            return specs.Array((), np.float32, "reward")

        def discount_spec(self):
            return specs.BoundedArray((), np.float32, 0.0, 1.0, "discount")


    def dict_spec(seed):
        return DictSpecEnv(seed)


    def dict_spec_continuous(seed):
        return DictSpecEnv(seed, continuous=True)
''')

SMALL = {
    "dqn": ["--set", "min_replay_size=64", "--set", "batch_size=32", "--set", "hidden_sizes=16"],
    "a2c": ["--set", "hidden_sizes=16"],
    "ddpg": ["--set", "min_replay_size=64", "--set", "batch_size=32", "--set", "actor_hidden_sizes=16",
             "--set", "critic_hidden_sizes=16"],
}

CASES = [
    ("dqn", "gym:FrozenLake-v1"),
    ("a2c", "gym:FrozenLake-v1"),
    ("dqn", "gym:CliffWalking-v1"),
    ("a2c", "gym:CliffWalking-v1"),
    ("dqn", "gridworld:simple?observation=state_index"),
    ("a2c", "gridworld:simple?observation=state_index"),
    ("dqn", "gym:Blackjack-v1"),
    ("a2c", "gym:Blackjack-v1"),
    ("dqn", "gym:user_envs:MultiBinaryObservation-v0"),
    ("a2c", "gym:user_envs:MultiBinaryObservation-v0"),
    ("dqn", "gym:user_envs:DictObservation-v0"),
    ("a2c", "gym:user_envs:DictObservation-v0"),
    ("ddpg", "gym:user_envs:DictObservationBox-v0"),
    ("dqn", "user_envs:dict_spec"),
    ("a2c", "user_envs:dict_spec"),
    ("ddpg", "user_envs:dict_spec_continuous"),
    ("dqn", "distrl.envs.image_tasks:channels_first"),
    ("dqn", "distrl.envs.image_tasks:channels_last"),
    ("a2c", "distrl.envs.image_tasks:channels_last"),
    ("a2c", "distrl.envs.image_tasks:channels_first"),
    ("ddpg", "distrl.envs.image_tasks:channels_first_continuous"),
    ("a2c", "gym:user_envs:MultiDiscreteActions-v0"),
    ("a2c", "gym:user_envs:TightBox-v0"),
    ("ddpg", "gym:user_envs:TightBox-v0"),
]


@pytest.fixture
def user_envs(tmp_path: Path) -> Path:
    (tmp_path / "user_envs.py").write_text(USER_ENVS)
    return tmp_path


def _run(run_cli, monkeypatch, folder: Path, agent: str, env: str, *extra: str):
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return run_cli(
        "train", "--agent", agent, "--env", env, "--max-env-steps", "300", "--eval-every", "300",
        "--eval-episodes", "2", "--no-progress", "--run-dir", "runs", *SMALL[agent], *extra,
    )


@pytest.mark.parametrize("agent, env", CASES, ids=[f"{agent}-{env}" for agent, env in CASES])
def test_each_space_kind_trains_to_a_summary(run_cli, monkeypatch, user_envs, agent, env):
    result = _run(run_cli, monkeypatch, user_envs, agent, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distrl summary:" in result.stdout
    assert "observations ->" in result.stderr  # The encoder chosen is printed at the start...
    (config_path,) = (user_envs / "runs").glob("*/config.json")
    assert json.loads(config_path.read_text())["observation_encoder"]  # ... and recorded.
    (summary_path,) = (user_envs / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["env_steps"] >= 300 and summary["final_eval_return"] is not None


@pytest.mark.parametrize(
    "agent, env, message",
    [
        ("dqn", "gym:user_envs:MultiDiscreteActions-v0", "DQN needs a Discrete action space"),
        ("dqn", "gym:Pendulum-v1", "DQN needs a Discrete action space"),
        ("ddpg", "gym:CartPole-v1", "DDPG needs a bounded continuous action spec"),
        ("ddpg", "gym:user_envs:MultiDiscreteActions-v0", "DDPG needs a bounded continuous action spec"),
    ],
)
def test_unsupported_combinations_fail_before_training_naming_space_and_agent(
    run_cli, monkeypatch, user_envs, agent, env, message
):
    result = _run(run_cli, monkeypatch, user_envs, agent, env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "got " in result.stderr
    assert not list((user_envs / "runs").glob("*/summary.json"))
