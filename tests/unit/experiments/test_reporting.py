"""The run's console output: returns printed without rounding small values away, a progress
bar that fits 80 columns with the return and the latest evaluation, and failure summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tqdm import tqdm

from distrl.experiments.evaluation import EvaluationResult
from distrl.experiments.reporting import PROGRESS_FORMAT, RunRecorder, format_return, short_env_name, summary_line


@pytest.mark.parametrize(
    "value, text", [(-0.0029, "-0.0029"), (0.755, "0.755"), (500.0, "500.0"), (-21.0, "-21.0"), (0.0, "0"),
                    (-1687.26, "-1687.3")],
)
def test_returns_keep_their_significant_digits(value, text):
    assert format_return(value) == text


def _recorder(tmp_path, **kwargs) -> RunRecorder:
    return RunRecorder(str(tmp_path), "gym:Pendulum-v1", "ddpg", 0, "debug", 1000, {}, None, progress=False, **kwargs)


def test_summary_line_shows_small_returns_and_cut_episodes(tmp_path):
    recorder = _recorder(tmp_path)
    recorder.record_evaluation(EvaluationResult(np.array([-0.0029, -0.0029]), np.array([5, 7]),
                                                np.array([False, True])), 1000, 10)
    summary = recorder.finish(1000, 10)
    line = summary_line(summary)
    assert "final greedy return -0.0029 +- 0" in line
    assert "1 episodes cut by the evaluation step cap" in line
    assert summary["status"] == "completed" and summary["evaluations"][-1]["episodes_cut"] == 1


def test_a_failed_run_leaves_a_summary_that_says_why(tmp_path):
    recorder = _recorder(tmp_path)
    try:
        raise ValueError("simulator lost contact")
    except ValueError as error:
        summary = recorder.fail(49, 3, error)
    on_disk = json.loads((recorder.run_dir / "summary.json").read_text())
    assert on_disk["status"] == summary["status"] == "failed" and on_disk["env_steps"] == 49
    assert on_disk["error"]["type"] == "ValueError" and "simulator lost contact" in on_disk["error"]["traceback"]
    assert "FAILED (ValueError: simulator lost contact)" in summary_line(on_disk)
    interrupted = _recorder(tmp_path / "b").fail(5, 0, KeyboardInterrupt())
    assert interrupted["status"] == "interrupted"


@pytest.mark.parametrize("env", ["gym:CartPole-v1", "distrl.envs.image_tasks:channels_last", "atari:Breakout"])
def test_progress_line_fits_80_columns_with_return_and_evaluation(env):
    figures = "ret 300 eval 221 1.4k st/s 646 up/s lag 3.5 wait 0.02"
    line = tqdm.format_meter(
        8_070, 12_000, 2.0, ncols=80, prefix=f"dqn {short_env_name(env)}", unit="step", unit_scale=True,
        bar_format=PROGRESS_FORMAT, postfix=figures,
    )
    assert len(line) <= 80
    assert "ret 300" in line and "eval 221" in line


def test_the_run_clock_starts_with_training_and_set_up_is_reported_apart(tmp_path):
    import time

    recorder = _recorder(tmp_path)
    time.sleep(0.3)  # building networks and optimizers
    recorder.start_training()
    recorder.record_evaluation(EvaluationResult(np.array([1.0]), np.array([5]), np.array([False]), 0.25), 500, 5)
    summary = recorder.finish(1000, 10)
    assert summary["setup_s"] >= 0.3 and summary["wall_clock_s"] < 0.3
    assert summary["evaluations"][0]["wall_clock_s"] < 0.3 and summary["evaluations"][0]["duration_s"] == 0.25
    rows = (recorder.run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert rows and all(float(row.split(",")[0]) < 0.3 for row in rows)
