"""Sweeps on real Ray Tune: every evaluation reaches Tune, and a trial Tune stops stops training.

Tiny DQN on CartPole-v1 (3,000 env steps, an evaluation every 500), trials
on the session's 2-CPU Ray. The stop test uses a scheduler that stops a known
trial at its first result: it takes the same STOP path through Tune's
controller as ASHA's decisions, without ASHA's dependence on which trial
reaches a rung first.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")

from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402

from distrl.experiments.tune import RUNS_FOLDER, run_sweep, with_clean_stop  # noqa: E402

TINY_DQN = ["min_replay_size=200", "batch_size=32", "hidden_sizes=16"]
MAX_ENV_STEPS = 3_000
EVAL_EVERY = 500
#: The learning rate of the trial the scheduler stops; any value above STOP_ABOVE marks it.
STOPPED_LR = 0.5
STOP_ABOVE = 0.1


def sweep(tmp_path: Path, param_space: dict, **kwargs):
    return run_sweep(
        "dqn", "gym:CartPole-v1", param_space, num_samples=1, max_env_steps=MAX_ENV_STEPS,
        eval_every=EVAL_EVERY, storage_path=tmp_path / "tune", base_overrides=TINY_DQN, eval_episodes=2,
        verbose=0, **kwargs,
    )


def run_files(result) -> tuple[dict, list[dict]]:
    """The trial's run directory's summary and metrics rows; the run directory lies in the trial's."""
    run_dir = Path(result.metrics["run_dir"])
    assert run_dir.parent == Path(result.path) / RUNS_FOLDER
    with open(run_dir / "summary.json") as f:
        summary = json.load(f)
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list((run_dir / "checkpoints").glob("ckpt-*/manifest.json")), "no sealed checkpoint"
    return summary, rows


def test_every_evaluation_is_reported_to_tune(ray_session, tmp_path):
    grid = sweep(tmp_path, {"learning_rate": 1e-3, "target_update_period": 64})
    assert not grid.errors, grid.errors
    result = grid[0]
    frame = result.metrics_dataframe
    steps = list(frame["env_steps"])
    assert len(steps) >= MAX_ENV_STEPS // EVAL_EVERY, steps
    assert all(a < b for a, b in zip(steps, steps[1:])), steps
    assert steps[0] >= EVAL_EVERY and steps[-1] == MAX_ENV_STEPS
    assert list(frame["training_iteration"]) == list(range(1, len(steps) + 1))
    summary, _ = run_files(result)
    assert summary["status"] == "completed" and summary["env_steps"] == MAX_ENV_STEPS
    assert [e["env_steps"] for e in summary["evaluations"]] == steps
    assert list(frame["eval_return"]) == [e["return_mean"] for e in summary["evaluations"]]
    with open(Path(summary["run_dir"]) / "config.json") as f:
        agent_config = json.load(f)["agent_config"]
    assert agent_config["learning_rate"] == 1e-3 and agent_config["target_update_period"] == 64
    assert agent_config["hidden_sizes"] == [16]


class StopMarkedTrials(FIFOScheduler):
    """Stops, at its first result, a trial whose ``learning_rate`` is above STOP_ABOVE
    (or whose ``stop`` is true)."""

    def on_trial_result(self, tune_controller, trial, result):
        if trial.config.get("learning_rate", 0) > STOP_ABOVE or trial.config.get("stop"):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


def test_clean_stop_waits_for_the_stopped_function(ray_session, tmp_path):
    """Tune ends a stopped trial's process right after its cleanup; with_clean_stop's cleanup
    waits until the function has returned, so slow final writes still land."""
    marker = tmp_path / "finished"

    def slow_to_finish(config):
        try:
            for step in range(5):
                tune.report({"step": step})
        except SystemExit:
            time.sleep(1.5)
            marker.write_text("final files written")

    grid = tune.Tuner(
        with_clean_stop(slow_to_finish), param_space={"stop": True},
        tune_config=tune.TuneConfig(scheduler=StopMarkedTrials()),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0),
    ).fit()
    assert not grid.errors, grid.errors
    assert len(grid[0].metrics_dataframe) == 1
    assert marker.read_text() == "final files written"


def test_a_stopped_trial_stops_training(ray_session, tmp_path):
    grid = sweep(tmp_path, {"learning_rate": tune.grid_search([1e-3, STOPPED_LR])}, scheduler=StopMarkedTrials())
    assert not grid.errors, grid.errors
    results = {r.config["learning_rate"]: r for r in grid}
    assert set(results) == {1e-3, STOPPED_LR}

    stopped = results[STOPPED_LR]
    assert len(stopped.metrics_dataframe) == 1
    summary, rows = run_files(stopped)
    # The run ended through the callback at its first evaluation: cleanly, with no further env steps.
    assert summary["status"] == "completed", summary.get("error")
    assert EVAL_EVERY <= summary["env_steps"] < 2 * EVAL_EVERY
    assert summary["env_steps"] == stopped.metrics["env_steps"]
    assert len(summary["evaluations"]) == 1  # No final evaluation after the stop.
    assert max(int(row["env_steps"]) for row in rows) <= summary["env_steps"]

    finished = results[1e-3]
    summary, _ = run_files(finished)
    assert summary["status"] == "completed" and summary["env_steps"] == MAX_ENV_STEPS
    assert len(finished.metrics_dataframe) == len(summary["evaluations"]) > 1
