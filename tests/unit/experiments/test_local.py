"""The single-process runtime: both acting paths and determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from distrl.agents import a2c
from distrl.envs.fakes import FakeEnvironment
from distrl.experiments import ExperimentConfig, make_experiment_config, run_local


@pytest.mark.parametrize("envs_per_actor", [1, 3])
def test_run_local_on_fake_env_both_paths(tmp_path, envs_per_actor):
    """envs_per_actor = 1 runs the single-env loop (batched actor behind SingleStreamActor),
    > 1 the vector loop; both count env steps exactly and keep the policy lag at 0."""
    config = a2c.Config(envs_per_actor=envs_per_actor, sequence_length=4, hidden_sizes=(8,), log_every=5)
    steps = 4 * 3 * 10
    experiment = ExperimentConfig(
        agent="a2c", env="fake", builder=a2c.Builder(config),
        network_factory=lambda spec: a2c.make_networks(spec, config),
        environment_factory=lambda seed: FakeEnvironment(7, obs_shape=(2,)),
        max_env_steps=steps, eval_every=steps, eval_episodes=2, run_dir=str(tmp_path), progress=False,
    )
    summary = run_local(experiment)
    assert summary["env_steps"] == steps
    assert summary["learner_steps"] == steps // (4 * envs_per_actor)
    assert summary["final_eval_return"] == 28.0  # 1 + ... + 7, whatever the actions.
    assert summary["replay"]["inserts"] == summary["replay"]["samples"] == steps // 4


def test_debug_mode_is_deterministic(tmp_path):
    def run(name: str) -> dict:
        config = make_experiment_config(
            "a2c", "gym:CartPole-v1", seed=7, max_env_steps=2_000, eval_every=2_000, eval_episodes=2,
            run_dir=str(tmp_path / name), progress=False,
        )
        return run_local(config)

    first, second = run("a"), run("b")
    assert first["learner_steps"] == second["learner_steps"] == 2_000 // (4 * 5)
    assert first["evaluations"][-1]["return_mean"] == second["evaluations"][-1]["return_mean"]
    metrics = [(Path(s["run_dir"]) / "metrics.csv").read_text().splitlines() for s in (first, second)]
    returns = [[line.split(",")[-1] for line in lines if "charts/episodic_return" in line] for lines in metrics]
    assert len(returns[0]) > 10 and returns[0] == returns[1]
