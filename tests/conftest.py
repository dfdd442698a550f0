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


@pytest.fixture
def solved_at_per_seed(tmp_path):
    """Issue 15's learning protocol in the single-process mode: per seed, a run of ``agent`` on
    ``env`` evaluated with 10 greedy episodes every ``eval_every`` env steps that stops once the
    mean return reaches ``threshold``; returns {seed: env steps when solved, or None}."""
    from distrl.experiments import make_experiment_config, run_local

    def run(agent: str, env: str, max_env_steps: int, eval_every: int, threshold: float,
            seeds=(0, 1, 2)) -> dict:
        solved = {}
        for seed in seeds:
            config = make_experiment_config(
                agent, env, seed=seed, max_env_steps=max_env_steps, eval_every=eval_every, eval_episodes=10,
                run_dir=str(tmp_path / str(seed)), progress=False,
                on_evaluation=lambda record: record["return_mean"] >= threshold,
            )
            solved[seed] = run_local(config)["solved_at_env_steps"]
        return solved

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
