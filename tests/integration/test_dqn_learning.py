"""DQN really learns, in the single-process mode (fixed seeds, tolerant thresholds)."""

from __future__ import annotations

import pytest

from distrl.envs.gridworld import GridWorld, ObservationType
from distrl.experiments import make_experiment_config, run_local


def _run(env: str, steps: int, tmp_path, seed: int = 0, eval_every: int = 2_000, eval_episodes: int = 2, **overrides):
    config = make_experiment_config(
        "dqn", env, seed=seed, max_env_steps=steps,
        agent_overrides={k: v for k, v in overrides.items()},
        eval_every=eval_every, eval_episodes=eval_episodes, run_dir=str(tmp_path), progress=False,
    )
    return run_local(config)


def _shortest_path(task: str) -> int:
    return GridWorld.from_task(task, ObservationType.AGENT_GOAL_POS, max_episode_len=200).shortest_path_length()


# One-step targets: uncorrected n-step returns follow the epsilon-greedy
# behaviour, whose random bumps into walls (-5) make the corridor along the top
# wall of `obstacle` look worse than the detour around the block.
@pytest.mark.parametrize(
    "env, task, steps",
    [
        ("gridworld:simple", "simple", 8_000),
        ("gridworld:obstacle", "obstacle", 10_000),
        ("gridworld:obstacle?observation=grid", "obstacle", 10_000),
    ],
)
def test_dqn_gridworld_greedy_path_is_shortest(tmp_path, env, task, steps):
    summary = _run(env, steps, tmp_path, n_step=1)
    final = summary["evaluations"][-1]
    assert final["return_mean"] == 10.0, summary["evaluations"]
    assert final["length_mean"] == _shortest_path(task), summary["evaluations"]


def test_dqn_cartpole_improves_quickly(tmp_path):
    summary = _run("gym:CartPole-v1", 12_000, tmp_path, eval_every=3_000, eval_episodes=3)
    best = max(e["return_mean"] for e in summary["evaluations"])
    # A random policy averages about 22; the defaults reach 100+ within a few thousand steps.
    assert best >= 100, summary["evaluations"]


@pytest.mark.slow
def test_dqn_solves_cartpole_within_50k_steps(tmp_path):
    summary = _run("gym:CartPole-v1", 50_000, tmp_path, eval_every=2_500, eval_episodes=10)
    assert summary["solved_at_env_steps"] is not None and summary["solved_at_env_steps"] <= 50_000
