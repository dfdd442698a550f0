"""``python -m distrl.bench peers``: distrl against its peers on one protocol, measured here.

Runs distrl and each installed peer (stable-baselines3, Tianshou: the
``peers`` extra) on DQN CartPole-v1, A2C CartPole-v1 and DDPG Pendulum-v1
under the protocol of ``protocol.py``, seeds interleaved (seed 0 of every
task and framework, then seed 1, ...), each run in its own process
(``runners.py``) with a time cap. It prints per task the env steps and
training seconds to solve of each seed, how many seeds solved, the median
time to solve (an unsolved seed counts as slower than any solved one) and
the ratio of distrl's median to the best peer's. With ``--modes debug,local``
it also compares distrl's distributed mode with its single process: on how
many seeds the local run solved in no more time, and the ratio of medians.
``--tasks dqn-costly-cartpole`` (distrl only, not run by default) is DQN on
CartPole-v1 with steps as costly as a heavier simulator's
(``distrl.bench.costly_env``), where that comparison shows what moving the
acting to other cores is worth.

A peer that does not solve a seed within the task's budget leaves its median
without a number when it misses most seeds, and then there is nothing to
compare with. ``--peer-budget-factor F`` lets the peers run F times the
budget (distrl keeps the task's), so a slow peer's time to solve is measured
instead of cut off; this favours the peers, never distrl.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from distrl.bench.peers.protocol import PEER_TASKS, TASKS, Task, median_or_none

#: The peers' Python packages, by runner name.
PEER_PACKAGES = {"sb3": "stable_baselines3", "tianshou": "tianshou"}


def installed(peer: str) -> bool:
    return importlib.util.find_spec(PEER_PACKAGES[peer]) is not None


def run_one(framework: str, task: str, seed: int, mode: str, time_cap_s: float,
            budget: Sequence[str] = ()) -> dict[str, Any]:
    """One run in a fresh process; a run past ``time_cap_s`` is killed and counts as unsolved.
    ``budget`` are ``--max-env-steps N`` / ``--eval-every N`` options for the runner."""
    with tempfile.TemporaryDirectory(prefix="distrl-peers-") as folder:
        out = Path(folder) / "run.json"
        command = [sys.executable, "-m", "distrl.bench.peers.runners", framework, task, str(seed), str(out),
                   "--mode", mode, *budget]
        try:
            finished = subprocess.run(command, capture_output=True, text=True, timeout=time_cap_s,
                                      env={**os.environ, "PYTHONWARNINGS": "ignore"})
        except subprocess.TimeoutExpired:
            return {"solved": None, "note": f"stopped at the time cap of {time_cap_s:g} s"}
        if finished.returncode != 0:
            tail = finished.stderr.strip().splitlines()[-1:] or ["no output"]
            return {"solved": None, "note": f"failed (exit {finished.returncode}): {tail[0]}"}
        return json.loads(out.read_text())


def _runners(task_name: str, modes: Sequence[str], peers: Sequence[str]) -> list[tuple[str, str, str]]:
    """(label, framework, mode) of every run of one task and seed."""
    runs = [(f"distrl ({mode})", "distrl", mode) for mode in modes]
    runs += [(peer, peer, "debug") for peer in TASKS[task_name].peers if peer in peers]
    return runs


def _cell(record: dict[str, Any]) -> str:
    solved = record.get("solved")
    if solved is None:
        if record.get("note"):
            return f"not solved ({record['note']})"
        best = max((e["return_mean"] for e in record.get("evaluations", [])), default=None)
        return "not solved" + ("" if best is None else f" (best {best:.1f})")
    return f"{solved['train_s']:.1f} s / {solved['env_steps']:,}"


def report(results: dict[str, dict[str, list[dict[str, Any]]]], seeds: Sequence[int], tasks: dict[str, Task],
           peer_budget_factor: int = 1) -> str:
    """The tables: per task, a row per framework with each seed's time and env steps to solve,
    the seeds solved, the median, and distrl's median against the best peer's; the header
    names the peers' budget when ``peer_budget_factor`` gives them more than the task's."""
    lines = []
    for task_name, by_label in results.items():
        task = tasks[task_name]
        peer_budget = "" if peer_budget_factor == 1 else \
            f" (peers: {peer_budget_factor * task.max_env_steps:,}, --peer-budget-factor {peer_budget_factor})"
        on = task.distrl_env or task.env_id
        lines.append(f"\n{task_name}: {task.agent} on {on}, solved at a mean greedy return >= "
                     f"{task.threshold:g}, evaluated every {task.eval_every:,} env steps, budget "
                     f"{task.max_env_steps:,}{peer_budget}")
        header = ["framework", *[f"seed {s} (s / env steps)" for s in seeds], "solved", "median s"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        medians = {}
        for label, records in by_label.items():
            times = [None if r.get("solved") is None else r["solved"]["train_s"] for r in records]
            medians[label] = median_or_none(times)
            median = "n/a" if medians[label] is None else f"{medians[label]:.1f}"
            solved = sum(t is not None for t in times)
            lines.append("| " + " | ".join([label, *map(_cell, records), f"{solved}/{len(records)}", median]) + " |")
        peer_medians = {k: v for k, v in medians.items() if not k.startswith("distrl") and v is not None}
        best = min(peer_medians, key=peer_medians.get) if peer_medians else None
        ran_peers = any(not label.startswith("distrl") for label in medians)
        for label, median in medians.items():
            if not label.startswith("distrl") or not ran_peers:
                continue
            if best is None or median is None:
                lines.append(f"{label} vs best peer: n/a (a median is missing)")
            else:
                lines.append(f"{label} vs best peer ({best}): ratio of medians {median / peer_medians[best]:.2f}x")
        if "distrl (local)" in by_label and "distrl (debug)" in by_label:
            lines.append(_modes_line(by_label["distrl (local)"], by_label["distrl (debug)"]))
    return "\n".join(lines)


def _solve_time(record: dict[str, Any]) -> float:
    return float("inf") if record.get("solved") is None else record["solved"]["train_s"]


def _modes_line(local: list[dict[str, Any]], debug: list[dict[str, Any]]) -> str:
    """The distributed mode against the single process, seed by seed (issue 13: no more
    wall-clock on 2 of 3 seeds) and as a ratio of medians. A seed counts as no slower only when the
    local run solved it in no more time; an unsolved seed is slower than any solved one. Raises
    ValueError when the two hold different numbers of seeds."""
    if len(local) != len(debug):
        raise ValueError(f"the local and debug runs hold {len(local)} and {len(debug)} seeds")
    at_most = sum(_solve_time(a) <= _solve_time(b) and a.get("solved") is not None for a, b in zip(local, debug))
    local_median = median_or_none([None if r.get("solved") is None else r["solved"]["train_s"] for r in local])
    debug_median = median_or_none([None if r.get("solved") is None else r["solved"]["train_s"] for r in debug])
    ratio = "n/a (a median is missing)" if local_median is None or debug_median is None \
        else f"{local_median / debug_median:.2f}x"
    return (f"distrl (local) vs distrl (debug): no slower on {at_most}/{len(local)} seeds, "
            f"ratio of medians {ratio}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distrl.bench peers", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tasks", default=",".join(PEER_TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated run seeds")
    parser.add_argument("--modes", default="debug", help="distrl modes, comma-separated: debug, local")
    parser.add_argument("--peers", default="sb3,tianshou", help="peers to run where installed")
    parser.add_argument("--time-cap-s", type=float, default=300.0, help="a run past this is stopped (unsolved)")
    parser.add_argument("--max-env-steps", type=int, default=None,
                        help="budget of every run (default: each task's; smaller for a quick check)")
    parser.add_argument("--eval-every", type=int, default=None, help="env steps between evaluations "
                        "(default: each task's)")
    parser.add_argument("--peer-budget-factor", type=int, default=1,
                        help="the peers run this many times the budget (distrl keeps it), so a peer that is "
                             "slow to solve gets a time instead of 'not solved'")
    parser.add_argument("--json", default=None, help="also write every run's record to this file")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    modes = [m for m in args.modes.split(",") if m]
    if unknown or any(m not in ("debug", "local") for m in modes):
        parser.error(f"--tasks must be of {', '.join(TASKS)} and --modes of debug, local; got {args.tasks!r}, "
                     f"{args.modes!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not seeds or any(s < 0 for s in seeds) or args.time_cap_s <= 0:
        parser.error("--seeds must hold non-negative integers and --time-cap-s must be > 0")
    for flag, value in (("--max-env-steps", args.max_env_steps), ("--eval-every", args.eval_every),
                        ("--peer-budget-factor", args.peer_budget_factor)):
        if value is not None and value <= 0:
            parser.error(f"{flag} must be a positive integer, got {value}")
    peers = []
    for peer in (p for p in args.peers.split(",") if p):
        if peer not in PEER_PACKAGES:
            parser.error(f"--peers must be of {', '.join(PEER_PACKAGES)}, got {peer!r}")
        if installed(peer):
            peers.append(peer)
        else:
            print(f"{peer}: not installed (pip install -e '.[peers]'), skipped", file=sys.stderr)
    effective = {name: dataclasses.replace(TASKS[name], max_env_steps=args.max_env_steps or TASKS[name].max_env_steps,
                                           eval_every=args.eval_every or TASKS[name].eval_every) for name in tasks}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in tasks}
    for seed in seeds:
        for task_name in tasks:
            task = effective[task_name]
            for label, framework, mode in _runners(task_name, modes, peers):
                factor = 1 if framework == "distrl" else args.peer_budget_factor
                budget = ["--max-env-steps", str(factor * task.max_env_steps), "--eval-every", str(task.eval_every)]
                record = run_one(framework, task_name, seed, mode, args.time_cap_s, budget)
                results[task_name].setdefault(label, []).append(record)
                print(f"seed {seed} {task_name} {label}: {_cell(record)}", file=sys.stderr, flush=True)
    print(report(results, seeds, effective, args.peer_budget_factor))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0
