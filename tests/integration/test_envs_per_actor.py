"""Several environments per actor end to end (DQN and DDPG): the debug mode and a local Ray run,
each to an exact env-step budget."""

from __future__ import annotations

import pytest

from distrl.experiments import make_experiment_config, run_local

SMALL_DQN = ["min_replay_size=200", "batch_size=32", "hidden_sizes=32,32", "samples_per_insert=8",
             "target_update_period=50", "envs_per_actor=4"]
SMALL_DDPG = ["min_replay_size=200", "batch_size=32", "actor_hidden_sizes=32,32", "critic_hidden_sizes=32,32",
              "samples_per_insert=8", "envs_per_actor=4"]


def _config(tmp_path, budget: int, agent: str = "dqn"):
    env, overrides = ("gym:CartPole-v1", SMALL_DQN) if agent == "dqn" else ("gym:Pendulum-v1", SMALL_DDPG)
    return make_experiment_config(
        agent, env, seed=0, max_env_steps=budget, agent_overrides=overrides,
        eval_every=budget, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )


@pytest.mark.parametrize("agent", ["dqn", "ddpg"])
def test_debug_mode_steps_four_envs_to_the_budget(tmp_path, agent):
    summary = run_local(_config(tmp_path, 1_200, agent))
    assert summary["env_steps"] == 1_200 and summary["learner_steps"] > 0
    assert summary["replay"]["inserts"] > 1_000  # Every env's transitions, in grouped inserts.


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_local_mode_steps_four_envs_to_the_budget(ray_session, tmp_path):
    from distrl.experiments.distributed import DistributedConfig, run_distributed

    summary = run_distributed(_config(tmp_path, 2_000), DistributedConfig(num_actors=1, envs_per_actor=4))
    dist = summary["distributed"]
    assert summary["env_steps"] == 2_000 and summary["end_reason"] == "budget", dist
    assert dist["envs_per_actor"] == 4 and summary["learner_steps"] > 0
    # The actor's epsilon schedule counted every env step of its four environments.
    exploration = dist["actor_policy_exploration"][0]
    assert exploration["kind"] == "epsilon_greedy" and exploration["steps"] == 2_000


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_ddpg_actors_step_four_envs_each_in_local_mode(ray_session, tmp_path):
    from distrl.experiments.distributed import DistributedConfig, run_distributed

    summary = run_distributed(_config(tmp_path, 2_000, "ddpg"), DistributedConfig(num_actors=2, envs_per_actor=4))
    dist = summary["distributed"]
    assert summary["env_steps"] == 2_000 and summary["end_reason"] == "budget", dist
    assert dist["envs_per_actor"] == 4 and summary["learner_steps"] > 0
    assert summary["replay"]["inserts"] > 1_500
    # Two actors at the spread noise scales (2x and 0.5x noise_sigma 0.2; Pendulum's half-range is 2).
    sigmas = sorted(e["sigma"][0] for e in dist["actor_policy_exploration"])
    assert sigmas == pytest.approx([0.2, 0.8])


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_the_cli_gives_ddpg_actors_several_environments(ray_session, run_cli, tmp_path):
    """``distrl train --agent ddpg --envs-per-actor 2``, attached to the test session's Ray."""
    import json

    import ray

    result = run_cli(
        "train", "--agent", "ddpg", "--env", "gym:Pendulum-v1", "--mode", "cluster",
        "--address", ray.get_runtime_context().gcs_address, "--num-actors", "1", "--envs-per-actor", "2",
        "--max-env-steps", "600", "--eval-every", "600", "--eval-episodes", "1", "--run-dir", str(tmp_path),
        "--no-progress", *[a for s in SMALL_DDPG if not s.startswith("envs_per_actor") for a in ("--set", s)],
        timeout=200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    dist = summary["distributed"]
    assert summary["env_steps"] == 600 and dist["envs_per_actor"] == 2
    assert dist["actor_policy_exploration"][0]["streams"] == 2
