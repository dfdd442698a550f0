"""``--tensorboard``: the same scalars as metrics.csv, as TensorBoard events, in both modes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from distrl.experiments import make_experiment_config, run_local

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

SMALL_DQN = ["min_replay_size=200", "batch_size=32", "hidden_sizes=32,32", "samples_per_insert=8"]


def _config(tmp_path: Path):
    return make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=2_000, agent_overrides=SMALL_DQN,
        eval_every=1_000, eval_episodes=2, run_dir=str(tmp_path), progress=False, tensorboard=True,
    )


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the run's TensorBoard events, as (env step, value) pairs."""
    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def _csv(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    with open(run_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            series.setdefault(row["metric"], []).append((int(row["env_steps"]), float(row["value"])))
    return series


def _check_same_as_csv(run_dir: Path, required: set[str]) -> None:
    events, rows = _scalars(run_dir), _csv(run_dir)
    assert required <= events.keys()
    assert events.keys() == rows.keys()
    for tag in ("eval/episodic_return", "charts/episodic_return"):
        assert [(step, pytest.approx(value)) for step, value in rows[tag]] == events[tag], tag


def test_debug_run_writes_tensorboard_events(tmp_path):
    summary = run_local(_config(tmp_path))
    _check_same_as_csv(Path(summary["run_dir"]), {"charts/episodic_return", "eval/episodic_return", "losses/td_loss"})


@pytest.mark.ray
def test_distributed_run_writes_tensorboard_events(ray_session, tmp_path):
    from distrl.experiments.distributed import DistributedConfig, run_distributed

    summary = run_distributed(_config(tmp_path), DistributedConfig(num_actors=1, poll_interval_s=0.25))
    # The learner's rows reach the driver's loggers through its stats() replies.
    _check_same_as_csv(Path(summary["run_dir"]), {"charts/episodic_return", "eval/episodic_return", "losses/td_loss"})
