"""``distrl train --config FILE`` through the command line: a shipped config trains."""

from __future__ import annotations

import json
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "launch" / "configs"


def test_cli_trains_from_shipped_config(run_cli, tmp_path):
    result = run_cli(
        "train", "--config", str(CONFIGS / "dqn_cartpole.yaml"), "--mode", "debug", "--max-env-steps", "600",
        "--set", "min_replay_size=200", "--eval-every", "300", "--eval-episodes", "1", "--no-progress", "--run-dir", "out",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (summary_path,) = (tmp_path / "out").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert (summary["agent"], summary["env"], summary["env_steps"]) == ("dqn", "gym:CartPole-v1", 600)


def test_the_apex_config_trains_in_local_mode_with_actor_priorities(run_cli, tmp_path):
    result = run_cli(
        "train", "--config", str(CONFIGS / "apex_dqn_cartpole.yaml"), "--max-env-steps", "3200",
        "--set", "min_replay_size=512", "--eval-every", "3200", "--eval-episodes", "1", "--num-cpus", "2",
        "--no-progress", "--run-dir", "out",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (summary_path,) = (tmp_path / "out").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["mode"] == "local" and summary["env_steps"] == 3200
    assert summary["learner_steps"] > 0
    config = json.loads(next((tmp_path / "out").glob("*/config.json")).read_text())
    assert config["agent_config"]["actor_priorities"] is True and config["agent_config"]["envs_per_actor"] == 8
