"""``python -m distrl.bench peers`` end to end on a tiny budget: every framework of a task runs in
its own process under the protocol and the report has a row for each (skipped without the
``peers`` extra)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("tianshou")

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_peers_bench_runs_every_framework_on_a_tiny_budget_and_the_peers_on_their_longer_one(tmp_path):
    out = tmp_path / "peers.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "distrl.bench", "peers", "--tasks", "ddpg-pendulum", "--seeds", "0",
         "--max-env-steps", "2000", "--eval-every", "1000", "--peer-budget-factor", "2", "--time-cap-s", "200",
         "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "budget 2,000 (peers: 4,000, --peer-budget-factor 2)" in result.stdout
    records = json.loads(out.read_text())["ddpg-pendulum"]
    assert set(records) == {"distrl (debug)", "tianshou", "sb3"}
    for label, (record,) in records.items():
        assert "note" not in record, (label, record)  # neither failed nor stopped at the cap
        assert record["evaluations"][0]["env_steps"] == 1000, (label, record)
        assert all(e["train_s"] >= 0 for e in record["evaluations"])
        assert f"| {label} |" in result.stdout
        if record["solved"] is None:  # ran its whole budget: distrl the task's, each peer twice that
            budget = 2000 if label.startswith("distrl") else 4000
            assert record["evaluations"][-1]["env_steps"] == budget, (label, record["evaluations"])
    assert "vs best peer" in result.stdout
