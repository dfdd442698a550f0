"""The single-process mode never imports ray (it must run where ray is broken or absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from distrl.cli import main
code = main(["train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "300",
             "--eval-every", "300", "--eval-episodes", "1", "--run-dir", sys.argv[1], "--no-progress",
             "--set", "min_replay_size=100", "--set", "batch_size=32"])
assert code == 0, code
loaded = sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))
assert not loaded, loaded
print("no ray")
"""


def test_debug_run_imports_no_ray(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no ray" in result.stdout
