"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli(tmp_path):
    """Runs ``python -m distrl ...`` in a subprocess and returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return subprocess.run(
            [sys.executable, "-m", "distrl", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def ray_session():
    """One small local Ray instance for every ``ray`` test in the session.

    Two CPUs, no dashboard, never attached to another cluster; shut down at
    the end. Workers inherit PYTHONPATH, so the repository root is put on it
    first (tests may run from a checkout that is not installed).
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        yield ray
        return
    os.environ["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
