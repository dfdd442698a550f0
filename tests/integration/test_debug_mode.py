"""The single-process debug mode end to end: CLI, run directory, determinism, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from distrl.experiments import make_experiment_config, run_local
from distrl.experiments.evaluation import evaluate
from distrl.specs import make_environment_spec
from distrl.utils.checkpointing import load_checkpoint
from distrl.utils.seeding import derive_seed

SUMMARY_KEYS = {
    "agent", "env", "seed", "mode", "env_steps", "learner_steps", "wall_clock_s",
    "final_eval_return", "solved_at_env_steps",
}


def _episode_returns(run_dir: str) -> list[float]:
    with open(Path(run_dir) / "metrics.csv") as f:
        return [float(row["value"]) for row in csv.DictReader(f) if row["metric"] == "charts/episodic_return"]


def _small_dqn(tmp_path: Path, seed: int, steps: int = 3_000):
    return make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=seed, max_env_steps=steps,
        agent_overrides=["min_replay_size=200", "batch_size=32", "hidden_sizes=32,32"],
        eval_every=1_000, eval_episodes=2, run_dir=str(tmp_path), progress=False,
    )


def test_same_seed_gives_identical_returns(tmp_path):
    first = run_local(_small_dqn(tmp_path / "a", seed=3))
    second = run_local(_small_dqn(tmp_path / "b", seed=3))
    other = run_local(_small_dqn(tmp_path / "c", seed=4))
    returns_first = _episode_returns(first["run_dir"])
    assert len(returns_first) > 20
    assert returns_first == _episode_returns(second["run_dir"])
    assert [e["return_mean"] for e in first["evaluations"]] == [e["return_mean"] for e in second["evaluations"]]
    assert first["learner_steps"] == second["learner_steps"] > 0
    assert returns_first != _episode_returns(other["run_dir"])


def test_samples_per_insert_holds_exactly(tmp_path):
    """The learner runs exactly as far as the limiter allows: at the end,
    inserts * spi - samples sits on the window's lower edge (within one batch)."""
    config = _small_dqn(tmp_path, seed=0, steps=2_000)
    summary = run_local(config)
    replay = summary["replay"]
    spec = make_environment_spec(config.environment_factory(0))
    limiter = config.builder.make_replay_tables(spec, seed=0)[0].rate_limiter
    batch = config.builder.batch_size
    assert summary["env_steps"] == 2_000
    # All but the last n-1 steps of the cut-short final episode and the adder's unflushed batch.
    assert 2_000 - config.agent_config.n_step - config.agent_config.adder_batch_size < replay["inserts"] <= 2_000
    assert replay["samples"] == summary["learner_steps"] * batch
    diff = replay["inserts"] * limiter.samples_per_insert - replay["samples"]
    assert limiter.min_diff - batch < diff <= limiter.min_diff + batch


def test_best_policy_file_holds_the_best_evaluated_weights(tmp_path):
    """best_policy.pt holds the weights of the first evaluation with the highest
    mean return; loaded into fresh networks they score that return again."""
    config = _small_dqn(tmp_path, seed=0, steps=4_000)
    summary = run_local(config)
    best = max(summary["evaluations"], key=lambda e: e["return_mean"])
    saved = load_checkpoint(Path(summary["run_dir"]) / "best_policy.pt")
    assert saved["env_steps"] == best["env_steps"] == summary["best_eval_env_steps"]
    assert saved["eval_return_mean"] == best["return_mean"] == summary["best_eval_return"]
    assert saved["version"] == best["learner_steps"] > 0
    assert (saved["agent"], saved["env"]) == ("dqn", "gym:CartPole-v1")

    spec = make_environment_spec(config.environment_factory(0))
    networks = config.network_factory(spec)
    networks.q_network.load_state_dict(saved["variables"]["q_network"])
    actor = config.builder.make_actor(config.builder.make_policy(networks, evaluation=True, seed=0), networks, None, None)
    result = evaluate(config.environment_factory(derive_seed(config.seed, "eval")), actor, config.eval_episodes)
    assert float(np.mean(result.returns)) == best["return_mean"]


def test_cli_train_writes_run_directory(run_cli, tmp_path):
    result = run_cli(
        "train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--mode", "debug", "--seed", "1",
        "--max-env-steps", "1500", "--eval-every", "500", "--eval-episodes", "2", "--run-dir", "out",
        "--set", "min_replay_size=100", "--set", "hidden_sizes=16,16",
    )
    assert result.returncode == 0, result.stderr
    assert "distrl summary: dqn on gym:CartPole-v1 seed 1 [debug]" in result.stdout
    (run_dir,) = (tmp_path / "out").iterdir()
    assert run_dir.name.startswith("gym_CartPole-v1__dqn__1__")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["env_steps"] == 1500 and summary["mode"] == "debug"
    assert summary["final_eval_return"] > 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent_config"]["min_replay_size"] == 100
    assert config["agent_config"]["hidden_sizes"] == [16, 16]
    metrics = {row["metric"] for row in csv.DictReader(open(run_dir / "metrics.csv"))}
    assert {"charts/episodic_return", "charts/episodic_length", "charts/SPS", "losses/td_loss",
            "eval/episodic_return"} <= metrics


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "learning_rat=0.1"], "unknown dqn config key 'learning_rat'"),
        (["--set", "batch_size=-3"], "batch_size must be a finite number > 0, got -3"),
        (["--set", "double_q=maybe"], "expected a boolean"),
        (["--env", "nope"], "Accepted forms"),
    ],
)
def test_cli_rejects_bad_config_naming_the_key(run_cli, args, message):
    base = {"--env": "gym:CartPole-v1"}
    argv = ["train", "--agent", "dqn"]
    if "--env" not in args:
        argv += ["--env", base["--env"]]
    result = run_cli(*argv, *args)
    assert result.returncode == 2
    assert message in result.stderr
