"""Settings under which an agent cannot learn in the run's budget end ``distrl train`` with exit 2
and an error naming the fields, before a run directory exists (``Builder.check_budget``)."""

from __future__ import annotations

import time

import pytest

A2C_BATCH_OF_ONE = ["--agent", "a2c", "--env", "gym:CartPole-v1", "--set", "normalize_advantages=true",
                    "--set", "envs_per_actor=1", "--set", "sequence_length=1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "800"],
         "min_replay_size must be < max_env_steps (800)"),
        (["--agent", "ddpg", "--env", "gym:Pendulum-v1", "--max-env-steps", "1000"],
         "min_replay_size must be < max_env_steps (1000)"),
        (["--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "1100"],
         "target_update_period must be <= the 100 learner updates this run makes"),
        ([*A2C_BATCH_OF_ONE, "--max-env-steps", "3000"], "normalize_advantages must be false when a batch holds "
                                                         "one advantage"),
        ([*A2C_BATCH_OF_ONE, "--max-env-steps", "3000", "--mode", "local", "--num-actors", "1"],
         "normalize_advantages must be false"),
    ],
    ids=["dqn-warmup", "ddpg-warmup", "dqn-target-period", "a2c-debug", "a2c-local"],
)
def test_train_refuses_settings_that_cannot_learn(run_cli, tmp_path, args, message):
    started = time.monotonic()
    result = run_cli("train", *args, "--no-progress", "--run-dir", "runs", timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "runs").exists()
    assert time.monotonic() - started < 60


def test_a2c_with_normalised_advantages_learns_once_a_batch_holds_several(run_cli, tmp_path):
    """The refused run's settings with 5-step segments: normalisation over 5 advantages gives a
    non-zero policy loss, and the policy's entropy falls below ln 2 as it learns."""
    result = run_cli("train", "--agent", "a2c", "--env", "gym:CartPole-v1", "--set", "normalize_advantages=true",
                     "--set", "envs_per_actor=1", "--set", "sequence_length=5", "--max-env-steps", "3000",
                     "--eval-every", "3000", "--eval-episodes", "2", "--no-progress", "--run-dir", "runs")
    assert result.returncode == 0, result.stderr[-3000:]
    import csv

    (run_dir,) = (tmp_path / "runs").iterdir()
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    policy_losses = [float(row["value"]) for row in rows if row["metric"].endswith("policy_loss")]
    entropies = [float(row["value"]) for row in rows if row["metric"].endswith("entropy")]
    assert policy_losses and any(loss != 0.0 for loss in policy_losses)
    assert entropies and entropies[-1] < 0.69
