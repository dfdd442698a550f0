"""launch/local_cluster.sh and launch/submit.sh against real, private, token-authenticated Ray clusters.

Every cluster here lives in its own /tmp/distrl-ray.* directory (Ray's
--temp-dir, the token, free ports) and is stopped by
``launch/lib/ray_cluster.sh stop``, which touches only its own processes: the
test session's other Ray instance (``ray_session``) and any Ray of another
user of the machine survive. Each test checks afterwards that no process of
its cluster is left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = REPO_ROOT / "launch" / "local_cluster.sh"
SUBMIT = REPO_ROOT / "launch" / "submit.sh"
RAY_CLUSTER = REPO_ROOT / "launch" / "lib" / "ray_cluster.sh"

pytest.importorskip("ray")
if shutil.which("bash") is None:  # pragma: no cover
    pytest.skip("the launch scripts need bash", allow_module_level=True)


def _load_helpers():
    spec = importlib.util.spec_from_file_location("ray_helpers", REPO_ROOT / "launch" / "lib" / "ray_helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()
psutil = helpers._import_psutil()

# A DQN run that ends in seconds (as in test_distributed.py), one env actor, no progress bar.
SMALL_RUN = [
    "--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "800", "--eval-every", "800",
    "--eval-episodes", "2", "--num-actors", "1", "--no-progress",
    "--set", "min_replay_size=200", "--set", "batch_size=32", "--set", "hidden_sizes=32,32",
    "--set", "samples_per_insert=8",
]
RUN_FILES = ("config.json", "metrics.csv", "summary.json")


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a launch script: this Python's venv, no Ray address or token of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                        "RAY_AUTH_TOKEN_PATH")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if (Path(sys.prefix) / "bin" / "python").exists():
        env["DISTRL_VENV"] = sys.prefix
    env.update(extra)
    return env


def run_script(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Runs a launch script; on timeout sends it SIGTERM (its trap stops its cluster) before giving up."""
    proc = subprocess.Popen(["bash", *args], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"{args[0]} timed out after {timeout} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def leftover_processes(cluster_dir: str, sids: set[int]) -> list[str]:
    """Processes that still name ``cluster_dir`` or belong to one of the cluster's sessions."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cluster_dir in cmdline or os.getsid(proc.pid) in sids:
                found.append(f"{proc.pid} {cmdline[:150]}")
        except (psutil.Error, OSError):
            continue
    return found


def check_run_dir(run_root: Path) -> dict:
    run_dirs = [path for path in run_root.iterdir() if path.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    for name in RUN_FILES:
        assert (run_dirs[0] / name).is_file(), name
    assert list((run_dirs[0] / "checkpoints").glob("ckpt-*/manifest.json")), "no sealed checkpoint"
    with open(run_dirs[0] / "metrics.csv") as f:
        assert any(row["metric"] == "charts/episodic_return" for row in csv.DictReader(f))
    summary = json.loads((run_dirs[0] / "summary.json").read_text())
    assert summary["mode"] == "cluster" and summary["env_steps"] >= 800
    return summary


@dataclass
class Cluster:
    dir: str
    dashboard_url: str
    dashboard_port: int
    gcs_address: str
    token_path: str
    sids: set[int]


@contextlib.contextmanager
def private_cluster(workers: int = 0):
    """A cluster started by launch/lib/ray_cluster.sh (as local_cluster.sh does); always stopped, then checked."""
    cluster_dir = tempfile.mkdtemp(prefix="distrl-ray.", dir="/tmp")
    try:
        started = subprocess.run(["bash", str(RAY_CLUSTER), "start", cluster_dir, "--workers", str(workers)],
                                 cwd=REPO_ROOT, env=script_env(), capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-4000:]
        values = dict(re.findall(r"^(?:export )?(\w+)='?([^'\n]*)'?$", (Path(cluster_dir) / "cluster.env").read_text(),
                                 re.M))
        yield Cluster(
            dir=cluster_dir, dashboard_url=values["DASHBOARD_URL"], dashboard_port=int(values["DASHBOARD_PORT"]),
            gcs_address=values["GCS_ADDRESS"], token_path=values["RAY_AUTH_TOKEN_PATH"],
            sids={int(s) for s in (Path(cluster_dir) / "sids").read_text().split()},
        )
    finally:
        sids = set()
        if (Path(cluster_dir) / "sids").exists():
            sids = {int(s) for s in (Path(cluster_dir) / "sids").read_text().split()}
        if (Path(cluster_dir) / ".distrl-ray-cluster").exists():
            subprocess.run(["bash", str(RAY_CLUSTER), "stop", cluster_dir], env=script_env(), timeout=180)
        shutil.rmtree(cluster_dir, ignore_errors=True)
        assert leftover_processes(cluster_dir, sids) == []


# ------------------------------------------------------------------ local_cluster.sh

@pytest.mark.ray
def test_two_local_clusters_side_by_side_each_run_their_job_and_stop_only_their_cluster(tmp_path):
    """One with a worker node, one head-only, started together: both jobs succeed and each script
    stops exactly its own cluster's processes."""
    roots = [tmp_path / "runs-a", tmp_path / "runs-b"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(
            lambda job: run_script([str(LOCAL_CLUSTER), "--workers", str(job[0]), "--", *SMALL_RUN,
                                    "--run-dir", str(job[1])], env=script_env(), timeout=300),
            [(1, roots[0]), (0, roots[1])],
        ))
    for workers, run_root, result in zip((1, 0), roots, results):
        out = result.stdout
        cluster_dir = re.search(r"private Ray directory: (\S+)", out)
        sessions = re.search(r"sessions ([\d ]+)", out)
        assert cluster_dir and sessions, out[-4000:]
        cluster_dir, sids = cluster_dir.group(1), {int(s) for s in sessions.group(1).split()}
        try:
            assert result.returncode == 0, out[-4000:]
            assert len(sids) == workers + 1  # the head and each worker node, each in its own session
            assert f"cluster up: {workers + 1} node(s)" in out
            assert "SUCCEEDED" in out
            summary = check_run_dir(run_root)
            assert f"local_cluster: run directory: {summary['run_dir']}" in out
            assert not Path(cluster_dir).exists()
            assert leftover_processes(cluster_dir, sids) == []
        finally:
            if Path(cluster_dir, ".distrl-ray-cluster").exists():  # the script's own cleanup failed
                subprocess.run(["bash", str(RAY_CLUSTER), "stop", cluster_dir], env=script_env(), timeout=180)


FAKE_RAY = """#!/usr/bin/env bash
# Fails the first `ray start --head` as Ray does when the raylet misses its 30 s to register,
# leaving a process behind in the attempt's session; every other call is the real ray.
if [ "$1" = start ] && [ "$2" = --head ] && [ ! -e "$FAKE_RAY_STATE/failed-once" ]; then
    touch "$FAKE_RAY_STATE/failed-once"
    sleep 600 &
    echo $! > "$FAKE_RAY_STATE/leftover.pid"
    echo "Exception: The current node timed out during startup. This could happen because some of the raylet failed to startup or the GCS has become overloaded." >&2
    exit 1
fi
exec {real_ray} "$@"
"""


@pytest.mark.ray
def test_a_head_node_that_times_out_at_startup_is_stopped_and_started_again(tmp_path):
    """Two clusters starting at once on 2 cores once made `ray start --head` give up after Ray's fixed
    30 s raylet wait; the start now stops that attempt's processes and tries once more on fresh ports."""
    real_ray = Path(sys.prefix) / "bin" / "ray"
    if not real_ray.exists():
        pytest.skip("needs the ray command of this Python's environment")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "ray").write_text(FAKE_RAY.format(real_ray=real_ray))
    for name in ("python", "ray"):
        (venv / "bin" / name).chmod(0o755)
    cluster_dir = tempfile.mkdtemp(prefix="distrl-ray.", dir="/tmp")
    env = script_env(DISTRL_VENV=str(venv), FAKE_RAY_STATE=str(tmp_path))
    sids: set[int] = set()
    try:
        started = subprocess.run(["bash", str(RAY_CLUSTER), "start", cluster_dir], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-4000:]
        assert "did not register within Ray's 30 s" in started.stderr
        assert "cluster up: 1 node(s)" in started.stderr
        assert "timed out during startup" in (Path(cluster_dir) / "head.attempt1.log").read_text()
        leftover = int((tmp_path / "leftover.pid").read_text())
        assert not psutil.pid_exists(leftover) or psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE
        sids = {int(s) for s in (Path(cluster_dir) / "sids").read_text().split()}
        assert len(sids) == 1  # only the second attempt's session is left to stop
    finally:
        if (Path(cluster_dir) / ".distrl-ray-cluster").exists():
            subprocess.run(["bash", str(RAY_CLUSTER), "stop", cluster_dir], env=env, timeout=180)
        shutil.rmtree(cluster_dir, ignore_errors=True)
    assert leftover_processes(cluster_dir, sids) == []


def test_local_cluster_refuses_a_temp_root_too_long_for_rays_sockets_before_starting_ray(tmp_path):
    """A 22-character DISTRL_RAY_TMP made Ray's dashboard socket path 109 bytes (limit 107) and the
    head failed to start; now the script stops at once, naming the limit."""
    long_root = Path("/tmp") / ("r" * 30)
    long_root.mkdir(exist_ok=True)
    try:
        started = time.monotonic()
        result = run_script([str(LOCAL_CLUSTER), "--", *SMALL_RUN, "--run-dir", str(tmp_path / "runs")],
                            env=script_env(DISTRL_RAY_TMP=str(long_root)), timeout=120)
        assert result.returncode != 0
        assert "107-byte limit" in result.stdout and "DISTRL_RAY_TMP" in result.stdout, result.stdout[-3000:]
        assert "starting the head node" not in result.stdout
        assert time.monotonic() - started < 60
    finally:
        shutil.rmtree(long_root, ignore_errors=True)


def test_local_cluster_rejects_mode_and_address():
    for flag in ("--mode", "--address"):
        result = run_script([str(LOCAL_CLUSTER), "--", flag, "local"], env=script_env(), timeout=30)
        assert result.returncode == 2
        assert "local_cluster: error:" in result.stdout and "--mode cluster --address auto" in result.stdout


# ------------------------------------------------------------------ submit.sh

@pytest.mark.ray
@pytest.mark.slow  # about 95 s, most of it Ray building the job's pip runtime environment
def test_submit_runs_the_job_with_the_token_from_the_environment(tmp_path):
    run_root = tmp_path / "runs"
    with private_cluster() as cluster:
        token = Path(cluster.token_path).read_text()
        # Only RAY_AUTH_TOKEN: submit.sh turns RAY_AUTH_MODE=token on by itself. HOME points to an
        # empty directory so that no ~/.ray/auth_token of the machine is used instead.
        env = script_env(RAY_AUTH_TOKEN=token, HOME=str(tmp_path))
        result = run_script([str(SUBMIT), "--address", cluster.dashboard_url, "--output", str(run_root),
                             "--", *SMALL_RUN], env=env, timeout=300)
        out = result.stdout
        assert result.returncode == 0, out[-4000:]
        assert "submit: token authentication: on (token from RAY_AUTH_TOKEN)" in out
        job_id = re.search(r"submit: job id: (\S+)", out).group(1)
        assert f"ray job logs --address {cluster.dashboard_url} --follow {job_id}" in out
        assert f"ray job stop --address {cluster.dashboard_url} {job_id}" in out
        assert f"submit: job {job_id}: SUCCEEDED" in out
        summary = check_run_dir(run_root)
        assert f"submit: run directory (on the driver's node): {summary['run_dir']}" in out

        # Without a token the job API turns the submission away.
        refused = run_script([str(SUBMIT), "--address", cluster.dashboard_url, "--no-wait", "--no-pip",
                              "--output", str(tmp_path / "unused")], env=script_env(HOME=str(tmp_path)), timeout=60)
        assert refused.returncode == 1
        assert "token authentication: off" in refused.stdout
        assert "Authentication required" in refused.stdout


def test_submit_needs_an_address_and_owns_the_run_dir():
    env = script_env()
    result = run_script([str(SUBMIT), "--", "--agent", "dqn"], env=env, timeout=30)
    assert result.returncode == 2 and "no cluster address" in result.stdout
    result = run_script([str(SUBMIT), "--address", "http://127.0.0.1:1", "--run-dir", "x"], env=env, timeout=30)
    assert result.returncode == 2 and "use the script's --output DIR" in result.stdout
    result = run_script([str(SUBMIT), "--address", "http://127.0.0.1:1", "--config", "/etc/hostname"],
                        env=env, timeout=30)
    assert result.returncode == 2 and "outside the repository" in result.stdout


def test_runtime_env_uploads_the_repository_and_installs_all_but_torch_and_ray():
    env = json.loads(subprocess.run(
        [sys.executable, str(REPO_ROOT / "launch/lib/ray_helpers.py"), "runtime-env", "--working-dir", str(REPO_ROOT),
         "--pip-from", str(REPO_ROOT / "pyproject.toml")], capture_output=True, text=True, check=True).stdout)
    assert env["working_dir"] == str(REPO_ROOT)
    assert {".venv", ".git", "runs", "docker/.env"} <= set(env["excludes"])
    names = {re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0] for dep in env["pip"]}
    assert "torch" not in names and "ray" not in names
    assert {"gymnasium", "dm-env", "numpy"} <= names
    image = json.loads(subprocess.run(
        [sys.executable, str(REPO_ROOT / "launch/lib/ray_helpers.py"), "runtime-env", "--image", "distrl:cpu",
         "--working-dir", str(REPO_ROOT), "--pip-from", str(REPO_ROOT / "pyproject.toml")],
        capture_output=True, text=True, check=True).stdout)
    assert set(image) == {"image_uri", "env_vars"}  # Ray allows nothing else next to image_uri


# ------------------------------------------------------------------ token authentication

def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.ray
def test_job_api_requires_the_clusters_token():
    with private_cluster() as cluster:
        token_file = Path(cluster.token_path)
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert Path(cluster.dir).stat().st_mode & 0o777 == 0o700
        token = token_file.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}", token)

        url = f"{cluster.dashboard_url}/api/jobs/"
        assert _get(url) == 401  # no token
        assert _get(url, "0" * 64) == 403  # a wrong token
        assert _get(url, token) == 200

        # The dashboard / job API listens on 127.0.0.1 only, not on the address the cluster advertises.
        host = cluster.gcs_address.rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            with pytest.raises(OSError):
                socket.create_connection((host, cluster.dashboard_port), timeout=5).close()
