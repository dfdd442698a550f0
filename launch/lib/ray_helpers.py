"""Small helpers for the launch scripts (launch/local_cluster.sh, launch/submit.sh).

Run with the Python that has Ray installed (psutil comes with Ray):

    python launch/lib/ray_helpers.py free-ports N
    python launch/lib/ray_helpers.py stop-scoped --temp-dir DIR [--sid SID ...] [--list]
    python launch/lib/ray_helpers.py runtime-env [--working-dir DIR] [--pip-from PYPROJECT] [--image IMAGE] ...
    python launch/lib/ray_helpers.py job-status --address URL --job-id ID [--wait]
    python launch/lib/ray_helpers.py wait-nodes --address URL --count N
    python launch/lib/ray_helpers.py socket-check --temp-dir DIR

``stop-scoped`` is the targeted replacement for ``ray stop``, which
terminates every Ray process of the user on the machine (it matches process
names, not clusters). It stops only the processes of one private cluster:
those in the sessions its ``ray start`` commands ran in (the launch scripts
start each node under ``setsid``; Ray's daemons, workers and job drivers keep
that session id), those whose command line names its private ``--temp-dir``,
and all their descendants. It never touches itself or its ancestors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

# Dependencies that a Ray cluster must already have: torch is gigabytes of
# wheels (reinstalling it for every job would be slow and would have to match
# the node's CUDA), and Ray must be exactly the cluster's own version.
PREINSTALLED = ("torch", "ray")

# What never goes into a job's working_dir upload.
DEFAULT_EXCLUDES = (".venv", ".git", "runs", "**/__pycache__", "*.pyc", "*.egg-info",
                    ".pytest_cache", "build", "dist", ".whl", "docker/.env")

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED")


# ---------------------------------------------------------------- free-ports

def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# ---------------------------------------------------------------- stop-scoped

def _import_psutil():
    """psutil, which Ray vendors under ray/thirdparty_files when it is not installed on its own."""
    try:
        import psutil
    except ModuleNotFoundError:
        import importlib.util

        spec = importlib.util.find_spec("ray")
        if spec is None or not spec.submodule_search_locations:
            raise
        sys.path.append(os.path.join(list(spec.submodule_search_locations)[0], "thirdparty_files"))
        import psutil
    return psutil


def _mentions(cmdline: list[str], temp_dir: str) -> bool:
    """True when a command line names ``temp_dir`` itself or a path inside it."""
    pattern = re.compile(re.escape(temp_dir.rstrip("/")) + r"(?=/|$|[\s'\",;:])")
    return any(pattern.search(arg) for arg in cmdline)


def scoped_processes(temp_dir: str | None, sids: set[int]) -> list:
    """The processes of one private Ray cluster (see the module docstring), sorted by pid."""
    psutil = _import_psutil()

    protected = {os.getpid()} | {parent.pid for parent in psutil.Process().parents()}
    roots = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        pid = proc.info["pid"]
        if pid in protected:
            continue
        try:
            in_session = bool(sids) and os.getsid(pid) in sids
        except OSError:
            continue
        named = temp_dir is not None and _mentions(proc.info["cmdline"] or [], temp_dir)
        if in_session or named:
            roots[pid] = proc
    found = dict(roots)
    for proc in roots.values():
        try:
            for child in proc.children(recursive=True):
                if child.pid not in protected:
                    found.setdefault(child.pid, child)
        except psutil.Error:
            pass
    return [found[pid] for pid in sorted(found)]


def _describe(proc) -> str:
    psutil = _import_psutil()

    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120] or proc.name()}"
    except psutil.Error:
        return f"{proc.pid} (gone)"


def _terminate(procs: list, grace_s: float) -> int:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns how many needed SIGKILL."""
    psutil = _import_psutil()

    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(alive)


def _bucket(proc) -> int:
    """Shutdown order of ``ray stop``: raylets first, the GCS last, everything else in between."""
    psutil = _import_psutil()

    try:
        text = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return 1
    if "/raylet/raylet " in text + " ":
        return 0
    if "/gcs/gcs_server " in text + " ":
        return 2
    return 1


def stop_scoped(temp_dir: str | None, sids: set[int], grace_s: float, verbose: bool) -> int:
    """Stops the cluster's processes; returns how many were stopped."""
    stopped = 0
    for _ in range(5):  # a raylet may still spawn a worker while it goes down: rescan
        procs = scoped_processes(temp_dir, sids)
        if not procs:
            break
        if verbose:
            for proc in procs:
                print(f"  stopping {_describe(proc)}", file=sys.stderr)
        for bucket in range(3):
            group = [proc for proc in procs if _bucket(proc) == bucket]
            if group:
                _terminate(group, grace_s)
        stopped += len(procs)
    return stopped


# ---------------------------------------------------------------- runtime-env

def pip_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies without torch and ray (see PREINSTALLED)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        text = pyproject.read_text()
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
        deps = re.findall(r"[\"']([^\"']+)[\"']", block.group(1)) if block else []
    else:
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    keep = []
    for dep in deps:
        name = re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0].lower().replace("_", "-")
        if name not in PREINSTALLED:
            keep.append(dep)
    return keep


def runtime_env(args: argparse.Namespace) -> dict:
    env: dict = {}
    if args.image:
        env["image_uri"] = args.image  # Ray allows only env_vars and config next to it
    else:
        if args.working_dir:
            env["working_dir"] = str(Path(args.working_dir).resolve())
            env["excludes"] = list(DEFAULT_EXCLUDES) + list(args.exclude)
        if args.pip_from:
            env["pip"] = pip_requirements(Path(args.pip_from))
    env_vars = {"PYTHONUNBUFFERED": "1"}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"ray_helpers: --env wants KEY=VALUE, got {item!r}")
        env_vars[key] = value
    env["env_vars"] = env_vars
    return env


# ---------------------------------------------------------------- job-status

def job_status(address: str, job_id: str, wait: bool, timeout_s: float | None) -> str:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id).value)
        if not wait or status in TERMINAL_STATUSES:
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(1.0)


# ---------------------------------------------------------------- wait-nodes

def wait_nodes(address: str, count: int, timeout_s: float) -> int:
    """Waits until the cluster at ``address`` (its dashboard URL) has ``count`` alive nodes; returns that number."""
    from ray.util.state import list_nodes

    deadline = time.monotonic() + timeout_s
    alive = 0
    while True:
        try:
            alive = len(list_nodes(address=address, filters=[("state", "=", "ALIVE")], raise_on_missing_output=False))
        except Exception:  # the dashboard may still be starting
            alive = 0
        if alive >= count or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


# ---------------------------------------------------------------- socket-check

#: AF_UNIX path limit Ray checks (``ray._private.utils.validate_socket_filepath``): sun_path less the NUL.
UNIX_SOCKET_MAX_BYTES = 107
#: ``session_`` + Ray's ``%Y-%m-%d_%H-%M-%S_%f`` timestamp + ``_``; the head's pid follows.
SESSION_PREFIX_BYTES = len("session_") + len("2026-11-29_15-55-48_809123") + 1


def longest_socket_name() -> str:
    """The longest socket file name a Ray head node makes under ``<session>/sockets/``: the
    dashboard's ``dash_<module>`` for each of its subprocess modules, ``plasma_store``, ``raylet``.
    The module list is Ray's own (it grew to ``TaskEventsHead`` in Ray 2.5x)."""
    import logging

    names = ["plasma_store", "raylet"]
    logging.disable(logging.INFO)  # The module scan logs at INFO; this helper's output is its answer.
    try:
        from ray.dashboard import utils as dashboard_utils
        from ray.dashboard.subprocesses.module import SubprocessModule

        names += ["dash_" + cls.__name__ for cls in dashboard_utils.get_all_modules(SubprocessModule)]
    except Exception:  # noqa: BLE001 - an older or newer Ray layout: fall back to the longest known.
        names.append("dash_TaskEventsHead")
    finally:
        logging.disable(logging.NOTSET)
    return max(names, key=len)


def longest_socket_path(temp_dir: str) -> str:
    """The longest socket path Ray may create below ``temp_dir``, with the largest pid this
    kernel hands out (``/proc/sys/kernel/pid_max``)."""
    try:
        pid_digits = len(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except OSError:
        pid_digits = 7  # Linux's maximum pid_max, 4194304.
    session = "s" * SESSION_PREFIX_BYTES + "9" * pid_digits
    return os.path.join(os.path.abspath(temp_dir), session, "sockets", longest_socket_name())


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ray_helpers.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("free-ports", help="print N distinct free TCP ports on 127.0.0.1")
    p.add_argument("count", type=int)

    p = sub.add_parser("stop-scoped", help="stop exactly one private Ray cluster's processes")
    p.add_argument("--temp-dir", default=None, help="the cluster's private --temp-dir")
    p.add_argument("--sid", type=int, action="append", default=[], help="session id of a `ray start` (repeatable)")
    p.add_argument("--sid-file", default=None, help="file with one session id per line")
    p.add_argument("--grace-s", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    p.add_argument("--list", action="store_true", help="only list the matching processes")
    p.add_argument("--verbose", action="store_true")

    p = sub.add_parser("runtime-env", help="print a job's runtime_env as JSON")
    p.add_argument("--working-dir", default=None)
    p.add_argument("--exclude", action="append", default=[])
    p.add_argument("--pip-from", default=None, metavar="PYPROJECT",
                   help="pip requirements: this pyproject.toml's dependencies without torch and ray")
    p.add_argument("--image", default=None, help="image_uri instead of working_dir and pip")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("job-status", help="print a Ray job's status (SUCCEEDED, FAILED, STOPPED, ...)")
    p.add_argument("--address", required=True)
    p.add_argument("--job-id", required=True)
    p.add_argument("--wait", action="store_true", help="poll until the job has ended")
    p.add_argument("--timeout-s", type=float, default=None)

    p = sub.add_parser("wait-nodes", help="wait until a cluster has N alive nodes")
    p.add_argument("--address", required=True, help="the dashboard URL, http://HOST:PORT")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout-s", type=float, default=60.0)

    p = sub.add_parser("socket-check", help="fail when Ray's socket paths below a temp dir would be too long")
    p.add_argument("--temp-dir", required=True)

    args = parser.parse_args(argv)
    if args.command == "socket-check":
        path = longest_socket_path(args.temp_dir)
        size = len(path.encode())
        limit = UNIX_SOCKET_MAX_BYTES - (4 if sys.platform == "darwin" else 0)
        if size > limit:
            print(f"Ray's temp dir {args.temp_dir} ({len(args.temp_dir)} characters) is too long: its longest "
                  f"Unix socket path would be {size} bytes ({path.replace(os.path.abspath(args.temp_dir), '<temp dir>')}), "
                  f"over the {limit}-byte limit; the temp dir may have at most "
                  f"{limit - (size - len(os.path.abspath(args.temp_dir).encode()))} characters", file=sys.stderr)
            return 1
        print(size)
    elif args.command == "free-ports":
        print(" ".join(str(port) for port in free_ports(args.count)))
    elif args.command == "stop-scoped":
        sids = set(args.sid)
        if args.sid_file and os.path.exists(args.sid_file):
            sids |= {int(line) for line in Path(args.sid_file).read_text().split() if line.strip()}
        if args.temp_dir is None and not sids:
            parser.error("stop-scoped needs --temp-dir or a session id")
        temp_dir = os.path.abspath(args.temp_dir) if args.temp_dir else None
        if args.list:
            for proc in scoped_processes(temp_dir, sids):
                print(_describe(proc))
        else:
            print(stop_scoped(temp_dir, sids, args.grace_s, args.verbose))
    elif args.command == "runtime-env":
        print(json.dumps(runtime_env(args)))
    elif args.command == "wait-nodes":
        alive = wait_nodes(args.address, args.count, args.timeout_s)
        print(alive)
        return 0 if alive >= args.count else 1
    elif args.command == "job-status":
        print(job_status(args.address, args.job_id, args.wait, args.timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
