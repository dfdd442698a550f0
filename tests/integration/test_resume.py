"""Checkpoints you can trust and runs you can continue, in the single-process mode, as a user meets them:
a run stopped by SIGINT or SIGTERM (or killed) and resumed with ``distrl train --resume`` ends exactly
where the uninterrupted run does; damaged checkpoints are skipped for the one before; bad values are
refused before anything runs, and a non-finite loss stops the run before it saves corrupted weights."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DQN = ["--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "5000", "--eval-every", "2000",
       "--eval-episodes", "2", "--no-progress", "--checkpoint-every", "700", "--set", "min_replay_size=300",
       "--set", "hidden_sizes=32,32"]


def _rows(run_dir: Path) -> list[tuple[str, str, str]]:
    """metrics.csv without its timing columns and metrics (the rest must match exactly)."""
    with open(run_dir / "metrics.csv") as f:
        return [(r["env_steps"], r["metric"], r["value"]) for r in csv.DictReader(f)
                if not r["metric"].endswith(("SPS", "updates_per_s"))]


def _only_run(folder: Path) -> Path:
    (run_dir,) = [p for p in folder.iterdir() if p.is_dir()]
    return run_dir


def _start(tmp_path: Path, run_root: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, "-m", "distrl", "train", *args, "--run-dir", run_root], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(tmp_path: Path, run_root: str, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((tmp_path / run_root).glob("*/checkpoints/ckpt-*/manifest.json"))
        if found:
            return found[0].parents[2]
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_run_resumes_to_exactly_the_uninterrupted_result(run_cli, tmp_path, stop):
    full = run_cli("train", *DQN, "--run-dir", "full")
    assert full.returncode == 0, full.stderr[-3000:]
    process = _start(tmp_path, "part", *DQN)
    run_dir = _wait_for_checkpoint(tmp_path, "part")
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + stop, stderr[-3000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["end_reason"] == "signal"
        assert "--resume" in stderr
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] == 5000 and summary["resume_exact"] is True
    assert 0 < summary["resumed_from_env_steps"] < 5000
    assert _rows(run_dir) == _rows(_only_run(tmp_path / "full"))


def test_resume_keeps_the_config_and_allows_a_larger_budget(run_cli, tmp_path):
    first = run_cli("train", *DQN[:4], "--max-env-steps", "1500", "--eval-every", "1000", "--no-progress",
                    "--eval-episodes", "1", "--set", "min_replay_size=300", "--run-dir", "runs")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = _only_run(tmp_path / "runs")
    refused = run_cli("train", "--resume", str(run_dir), "--seed", "3")
    assert refused.returncode == 2 and "only --max-env-steps and --time-budget-s may change, got --seed" in refused.stderr
    longer = run_cli("train", "--resume", str(run_dir), "--max-env-steps", "2500")
    assert longer.returncode == 0, longer.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 2500 and summary["resumed_from_env_steps"] == 1500
    assert [e["env_steps"] for e in summary["evaluations"]][-1] == 2500


def test_damaged_checkpoints_fall_back_to_an_intact_one_or_stop_naming_the_file(run_cli, tmp_path):
    first = run_cli("train", *DQN[:4], "--max-env-steps", "2100", "--eval-every", "5000", "--no-progress",
                    "--eval-episodes", "1", "--checkpoint-every", "700", "--set", "min_replay_size=300",
                    "--run-dir", "runs")
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = _only_run(tmp_path / "runs")
    checkpoints = sorted((run_dir / "checkpoints").iterdir(), reverse=True)
    assert len(checkpoints) == 3  # keep_checkpoints
    newest = checkpoints[0] / "learner.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # torn
    middle = checkpoints[1] / "learner.pt"
    data = bytearray(middle.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # flipped bytes inside a tensor
    middle.write_bytes(bytes(data))
    resumed = run_cli("train", "--resume", str(run_dir), "--max-env-steps", "2500")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"skipped checkpoint {checkpoints[0]}" in resumed.stderr and "torn or truncated" in resumed.stderr
    assert f"skipped checkpoint {checkpoints[1]}" in resumed.stderr and "SHA-256" in resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == int(checkpoints[2].name.split("-")[1])
    for folder in sorted((run_dir / "checkpoints").iterdir()):
        (folder / "manifest.json").unlink()
    failed = run_cli("train", "--resume", str(run_dir), "--max-env-steps", "3000")
    assert failed.returncode == 1
    assert "no intact checkpoint" in failed.stderr and "no manifest.json" in failed.stderr


@pytest.mark.parametrize(
    "flags, message",
    [(["--set", "learning_rate=inf"], "learning_rate: expected a finite number, got 'inf'"),
     (["--set", "samples_per_insert=nan"], "samples_per_insert: expected a finite number"),
     (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
     (["--mode", "local", "--learner-device", "cuda"], "this machine has no CUDA device"),
     (["--keep-checkpoints", "1"], "keep_checkpoints must be an integer >= 2")],
)
def test_bad_values_are_refused_before_anything_runs(run_cli, tmp_path, flags, message):
    result = run_cli("train", *DQN[:4], "--no-progress", "--run-dir", "runs", *flags)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "runs").exists()


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(run_cli, tmp_path):
    """A learning rate of 1e12 is finite but makes the loss non-finite within a few updates: the run
    stops naming the learner step, and no checkpoint after that holds the corrupted weights."""
    result = run_cli("train", *DQN[:4], "--max-env-steps", "5000", "--no-progress", "--run-dir", "runs",
                     "--set", "min_replay_size=300", "--set", "learning_rate=1e12", "--checkpoint-every", "200")
    assert result.returncode == 1
    assert "NonFiniteLossError" in result.stderr and "non-finite loss at learner step" in result.stderr
    run_dir = _only_run(tmp_path / "runs")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    from distrl.utils.checkpointing import CheckpointStore, load_checkpoint

    folder, skipped = CheckpointStore(run_dir / "checkpoints").latest_intact()
    assert folder is not None and not skipped
    import torch

    weights = load_checkpoint(folder / "learner.pt")["learner"]["q_network"]
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def _run_processes(root_pid: int) -> list:
    """The processes below ``root_pid`` (its Ray services and workers), as psutil objects."""
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


LOCAL_DQN = ["--agent", "dqn", "--env", "gym:CartPole-v1", "--mode", "local", "--num-actors", "1",
             "--max-env-steps", "200000", "--eval-every", "200000", "--eval-episodes", "1", "--no-progress",
             "--checkpoint-every-s", "2", "--set", "min_replay_size=200", "--set", "batch_size=32",
             "--set", "hidden_sizes=32,32", "--set", "samples_per_insert=8"]


@pytest.mark.slow  # about 40 s: two local-mode runs with Ray start-up and shutdown
def test_local_run_stopped_by_sigterm_leaves_no_ray_process_and_resumes_with_versions_going_on(run_cli, tmp_path):
    """SIGTERM: a final checkpoint, a summary marked interrupted, exit 143, no process of the run's Ray
    left; ``--resume`` continues the env-step count and the weight versions (never going back)."""
    psutil = pytest.importorskip("psutil")
    process = _start(tmp_path, "runs", *LOCAL_DQN)
    run_dir = _wait_for_checkpoint(tmp_path, "runs", timeout=180)
    time.sleep(3)  # A few more polls and checkpoints.
    children = _run_processes(process.pid)
    assert children, "the local run started no Ray processes"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 143, stderr[-3000:]
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline()[:2] for p in alive]
    stopped = json.loads((run_dir / "summary.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["end_reason"] == "signal"
    assert stopped["learner_steps"] > 0 and stopped["distributed"]["published_version"] > 0

    resumed = run_cli("train", "--resume", str(run_dir), "--max-env-steps", str(stopped["env_steps"] + 3000),
                      timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["mode"] == "local"
    assert summary["resumed_from_env_steps"] == stopped["env_steps"]
    assert summary["env_steps"] >= stopped["env_steps"] + 3000
    figures = summary["distributed"]
    # The learner restored the final checkpoint: its step count (the weight version) went on from there.
    assert figures["learner_restored_from_steps"] == stopped["learner_steps"]
    assert summary["learner_steps"] > stopped["learner_steps"]
    assert figures["published_version"] > stopped["distributed"]["published_version"]
    assert min(figures["actor_policy_versions"]) > stopped["distributed"]["published_version"]
    assert figures["actor_version_regressions"] == 0
    with open(run_dir / "metrics.csv") as f:
        steps = [int(row["env_steps"]) for row in csv.DictReader(f) if row["metric"] == "charts/episodic_return"]
    assert steps[-1] > stopped["env_steps"] and max(steps[:len(steps) // 2]) <= stopped["env_steps"]
