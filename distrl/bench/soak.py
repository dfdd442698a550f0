"""Memory of a long local run: the resident set of every process of its Ray session over time.

Starts ``python -m distrl train --mode local`` (DQN on CartPole by default,
a budget too large to finish, ended by ``--time-budget-s``) in a
subprocess and samples, every ``--sample-every-s`` seconds, the resident set
size (RSS, psutil's ``memory_info().rss``) of the training process and every
process below it: the Ray services it starts (GCS, raylet, dashboard
processes) and the Ray workers (learner, env actors, replay server, weight
store; told apart by the process title Ray gives them). For each process it
reports the RSS at the end of the warm-up (``--warmup-fraction`` of the
run), at the end, the growth per minute after the warm-up (least-squares
slope) and the growth after the warm-up in percent. The aim (issue 14): every
process flat within 10% after warm-up over 30 minutes.

    python -m distrl.bench soak --minutes 30 [--agent dqn] [--env gym:CartPole-v1]
        [--sample-every-s 10] [--warmup-fraction 0.2] [--json FILE] [-- TRAIN OPTIONS]

Options after ``--`` go to ``distrl train`` (e.g. ``--num-actors 2``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
import psutil

#: The growth after warm-up the issue allows, in percent.
FLAT_WITHIN_PERCENT = 10.0


def process_label(process: psutil.Process) -> str:
    """A stable name for a process of the run: Ray's title without the method it runs now
    (``ray::LearnerWorker.stats`` -> ``ray::LearnerWorker``), else the executable's name."""
    try:
        command = process.cmdline()
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    first = command[0] if command else name
    if first.startswith("ray::"):  # ray::Class.method, or ray::<actor name>:Class.method for named actors.
        title = first.split()[0][len("ray::"):]
        return "ray::" + title.rsplit(":", 1)[-1].split(".")[0]
    if "distrl" in " ".join(command[:4]) and "train" in command:
        return "driver (distrl train)"
    for part in command[:3]:
        base = os.path.basename(part)
        if base.endswith(".py"):
            return f"{name}:{base}"
    return name


def sample_tree(root: psutil.Process) -> dict[int, tuple[str, int]]:
    """``{pid: (label, rss bytes)}`` for ``root`` and every process below it."""
    found = {}
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for process in processes:
        try:
            found[process.pid] = (process_label(process), process.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def growth(times_s: np.ndarray, rss: np.ndarray, warmup_s: float) -> dict[str, float]:
    """RSS at the end of the warm-up and at the end (MiB), the slope after the warm-up (MiB per
    minute, least squares) and the growth from the warm-up's end to the end (percent)."""
    after = times_s >= warmup_s
    if after.sum() < 2:
        after = np.ones_like(times_s, dtype=bool)
    t, r = times_s[after], rss[after] / 2**20
    slope = float(np.polyfit(t / 60.0, r, 1)[0]) if len(t) >= 2 and np.ptp(t) > 0 else 0.0
    start, end = float(r[0]), float(r[-1])
    return {"rss_warm_mib": start, "rss_end_mib": end, "mib_per_min": slope,
            "growth_percent": 100.0 * (end - start) / start if start > 0 else 0.0}


def run(args: argparse.Namespace, train_options: Sequence[str]) -> dict:
    run_root = args.run_dir or tempfile.mkdtemp(prefix="distrl-soak-")
    seconds = args.minutes * 60.0
    command = [
        sys.executable, "-m", "distrl", "train", "--mode", "local", "--agent", args.agent, "--env", args.env,
        "--max-env-steps", "1000000000", "--eval-every", "1000000000", "--eval-episodes", "1",
        "--time-budget-s", str(seconds), "--no-progress", "--run-dir", run_root, *train_options,
    ]
    print("soak: " + " ".join(command), flush=True)
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(child.pid)
    series: dict[int, dict] = {}
    try:
        while child.poll() is None:
            now = time.monotonic() - start
            for pid, (label, rss) in sample_tree(root).items():
                entry = series.setdefault(pid, {"label": label, "t": [], "rss": []})
                # A Ray worker's title names the method it runs now (IDLE between calls): keep the
                # first telling name.
                if entry["label"] in ("gone", "python", "python3", "ray::IDLE") and label not in ("gone", "ray::IDLE"):
                    entry["label"] = label
                entry["t"].append(now)
                entry["rss"].append(rss)
            deadline = time.monotonic() + args.sample_every_s
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
    finally:
        if child.poll() is None:
            child.terminate()
        output = child.communicate(timeout=120)[0]
    warmup_s = args.warmup_fraction * seconds
    rows = []
    for pid, entry in series.items():
        t, rss = np.asarray(entry["t"]), np.asarray(entry["rss"], dtype=float)
        if len(t) < 3 or t[-1] - t[0] < 0.5 * seconds:
            continue  # Short-lived helpers (setup scripts): not part of the run's steady state.
        rows.append({"pid": pid, "process": entry["label"], "samples": int(len(t)), **growth(t, rss, warmup_s)})
    rows.sort(key=lambda row: -row["rss_end_mib"])
    return {"minutes": args.minutes, "warmup_s": warmup_s, "exit_code": child.returncode,
            "processes": rows, "train_output_tail": output[-2000:]}


def report(result: dict) -> str:
    lines = [f"soak: {result['minutes']:g} min local run, warm-up {result['warmup_s']:.0f} s, "
             f"train exit code {result['exit_code']}",
             f"{'process':<34} {'pid':>7} {'RSS warm MiB':>13} {'RSS end MiB':>12} {'MiB/min':>8} {'growth %':>9}"]
    for row in result["processes"]:
        flag = "" if abs(row["growth_percent"]) <= FLAT_WITHIN_PERCENT else "  > 10%"
        lines.append(f"{row['process'][:34]:<34} {row['pid']:>7} {row['rss_warm_mib']:>13.1f} "
                     f"{row['rss_end_mib']:>12.1f} {row['mib_per_min']:>8.2f} {row['growth_percent']:>9.1f}{flag}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    train_options: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, train_options = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(prog="python -m distrl.bench soak", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    parser.add_argument("--agent", default="dqn")
    parser.add_argument("--env", default="gym:CartPole-v1")
    parser.add_argument("--sample-every-s", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--warmup-fraction", type=float, default=0.2,
                        help="share of the run before growth is measured (replay filling, imports)")
    parser.add_argument("--run-dir", default=None, help="where the run goes (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if not args.sample_every_s > 0:
        parser.error(f"--sample-every-s must be > 0, got {args.sample_every_s}")
    if not 0 <= args.warmup_fraction < 1:
        parser.error(f"--warmup-fraction must be in [0, 1), got {args.warmup_fraction}")
    result = run(args, train_options)
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if result["exit_code"] == 0 else 1
