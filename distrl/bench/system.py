"""End-to-end throughput of the Ray runtime: DQN with 1, 2, ... env actors, in two profiles.

For each profile and actor count the benchmark runs ``run_distributed`` for
``--seconds`` of acting (after start-up) on one private local Ray instance
and reports, in steady state (polls after the first quarter of the run):

* total env steps per second and per actor, and the per-actor efficiency:
  the mean per-actor rate over that of one actor in the same profile (1.0
  is perfect scaling; below it, actors slow each other down);
* learner updates per second, the share of time the learner waited for
  data, and the weight lag (learner steps between the newest published
  weights and those the actors act with, the mean over the steady polls);
* the share of the actors' time spent on backpressure, and the bottleneck
  the runtime names;
* the ratio of total env steps per second to the raw step rate of a
  single-process gymnasium environment with random actions, measured in the
  same run (what one core does with no agent, replay or Ray at all);
* the ratio of the learner's updates per second to what a bare torch loop of
  the same DQN update (same network, batch, optimizer and loss) runs in the
  same run (``torch_reference.py``): what the runtime costs on top of torch.

Profiles (``--profiles``): ``default`` is DQN's own replay ratio (32 samples
per insert, batch 64: 0.5 updates per env step), learner-bound on a small
machine, so more actors mostly add backpressure; ``unthrottled`` lowers the
replay ratio to ``samples_per_insert=0.5`` (one update per 128 env steps),
so that the actors, not the learner, are the limit and the curve shows how
acting scales. ``--set`` applies to both profiles, ``--distributed-set``
sets ``DistributedConfig`` fields (e.g. ``sample_batches_per_call=16``).

Because those runs cannot show the insert path's capacity, the benchmark
then runs the ``insert`` benchmark (``distrl.bench.insert``) on the same Ray
instance: W writer actors inserting DQN transitions into one replay server
with a limiter that never makes inserts wait, at the DQN adder's batch size
and at 256; its ``--insert-*`` options are that benchmark's options, and
``--no-insert`` skips it.

    python -m distrl.bench system [--actors 1,2] [--profiles default,unthrottled] [--seconds 20]
        [--num-cpus N] [--env gym:CartPole-v1] [--set KEY=VALUE ...] [--distributed-set KEY=VALUE ...]
        [--torch-seconds 3] [--insert-writers 1,2] [--insert-batch-sizes 16,256] [--insert-seconds 3]
        [--no-insert]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any, NamedTuple, Sequence

from distrl.bench import insert, options
from distrl.bench.torch_reference import pure_dqn_updates_per_s


#: The replay-ratio settings ``--profiles`` chooses from: DQN overrides applied before ``--set``.
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "unthrottled": ("samples_per_insert=0.5",),
}


class Row(NamedTuple):
    """Steady-state figures of one profile and actor count."""

    num_actors: int
    env_steps_per_s: float
    per_actor: list[float]
    updates_per_s: float
    learner_wait_fraction: float
    backpressure_fraction: float
    bottleneck: str
    profile: str = "default"
    weight_lag: float = 0.0


def raw_env_steps_per_s(env_id: str, seconds: float, seed: int = 0) -> float:
    """Steps per second of ``gymnasium.make(env_id)`` with random actions in this process.

    Actions are drawn up front, so the figure is the environment's own cost
    plus the reset after each episode, nothing else.
    """
    import gymnasium

    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(4096)]
    env.reset(seed=seed)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for action in actions[:1024]:
            _, _, terminated, truncated, _ = env.step(action)
            steps += 1
            if terminated or truncated:
                env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def run_one(env: str, num_actors: int, seconds: float, overrides: Sequence[str], run_dir: str,
            profile: str = "default", distributed_overrides: Sequence[str] = ()) -> Row:
    """One distributed DQN run of ``seconds`` of acting; figures from its steady state."""
    from distrl.experiments import make_experiment_config
    from distrl.experiments.distributed import DistributedConfig, run_distributed
    from distrl.utils.config import apply_overrides

    config = make_experiment_config(
        "dqn", env, seed=0, max_env_steps=10**9, agent_overrides=[*PROFILES[profile], *overrides],
        eval_every=10**9, eval_episodes=1, run_dir=run_dir, progress=False,
    )
    dist = apply_overrides(
        DistributedConfig(num_actors=num_actors, time_budget_s=seconds, poll_interval_s=0.5),
        list(distributed_overrides), "DistributedConfig",
    )
    samples: list[tuple[float, int, int, list[int], float]] = []

    def on_poll(state: Any) -> None:
        per_actor = [sum(steps.values()) for steps in state.steps_by_incarnation]
        published = state.learner_stats.get("published_version", 0)
        lags = [published - stats["policy_version"] for stats in state.actor_stats if stats is not None]
        samples.append((state.elapsed_s, state.env_steps, state.learner_steps, per_actor,
                        sum(lags) / len(lags) if lags else 0.0))

    summary = run_distributed(config, dist, on_poll=on_poll)
    figures = summary["distributed"]
    steady = [s for s in samples if s[0] >= seconds / 4]
    if len(steady) < 2:
        steady = samples[-2:]
    (t0, env0, upd0, actors0, _), (t1, env1, upd1, actors1, _) = steady[0], steady[-1]
    span = max(t1 - t0, 1e-9)
    return Row(
        num_actors=num_actors,
        env_steps_per_s=(env1 - env0) / span,
        per_actor=[(b - a) / span for a, b in zip(actors0, actors1)],
        updates_per_s=(upd1 - upd0) / span,
        learner_wait_fraction=float(figures["learner_wait_fraction"]),
        backpressure_fraction=float(figures["actor_backpressure_wait_fraction"]),
        bottleneck=figures["bottleneck"].split(":")[0],
        profile=profile,
        weight_lag=sum(s[4] for s in steady) / len(steady),
    )


def per_actor_efficiency(rows: Sequence[Row]) -> list[float | None]:
    """Per row, its mean per-actor env steps/s over that of the one-actor row of the same profile
    (None where the profile has no one-actor row)."""
    single = {row.profile: row.env_steps_per_s for row in rows if row.num_actors == 1}
    return [None if not single.get(row.profile) else
            (row.env_steps_per_s / row.num_actors) / single[row.profile] for row in rows]


def format_report(rows: Sequence[Row], raw_rate: float, env: str, seconds: float, cpus: int,
                  torch_rate: float) -> str:
    """The printed table: one line per profile and actor count."""
    lines = [
        f"system throughput: dqn on {env}, {seconds:g} s of acting per row, {cpus} CPUs; "
        f"raw single-process env: {raw_rate:,.0f} steps/s; bare torch DQN update: {torch_rate:,.0f} updates/s",
        f"{'profile':<12}{'actors':>6}{'env steps/s':>13}{'per actor':>22}{'efficiency':>11}{'updates/s':>11}"
        f"{'x torch':>9}{'x raw env':>11}{'learner wait':>14}{'weight lag':>12}{'backpressure':>14}  bottleneck",
    ]
    for row, efficiency in zip(rows, per_actor_efficiency(rows)):
        per_actor = ", ".join(f"{rate:,.0f}" for rate in row.per_actor)
        efficiency_text = "-" if efficiency is None else f"{efficiency:.2f}"
        lines.append(
            f"{row.profile:<12}{row.num_actors:>6}{row.env_steps_per_s:>13,.0f}{per_actor:>22}{efficiency_text:>11}"
            f"{row.updates_per_s:>11,.0f}{row.updates_per_s / torch_rate:>9.2f}"
            f"{row.env_steps_per_s / raw_rate:>11.3f}{row.learner_wait_fraction:>14.0%}{row.weight_lag:>12.1f}"
            f"{row.backpressure_fraction:>14.0%}  {row.bottleneck}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, runs one distributed run per actor count and prints the table."""
    parser = argparse.ArgumentParser(prog="python -m distrl.bench system", description=__doc__.split("\n\n")[0])
    parser.add_argument("--actors", default="1,2", help="comma-separated env actor counts, one run each")
    parser.add_argument("--profiles", default="default,unthrottled",
                        help="comma-separated replay-ratio profiles, each run at every actor count: "
                             + ", ".join(f"{name} ({' '.join(sets) or 'DQN defaults'})" for name, sets in PROFILES.items()))
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of acting per run (after start-up)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the private Ray instance (default: all)")
    parser.add_argument("--env", default="gym:CartPole-v1", help="a gym:<id> environment")
    parser.add_argument("--raw-seconds", type=float, default=2.0, help="seconds measuring the raw environment")
    parser.add_argument("--torch-seconds", type=float, default=3.0,
                        help="seconds measuring the bare torch DQN update (before and after the runs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DQN config field in every profile (repeatable)")
    options.add_distributed_set(parser, "sample_batches_per_call=16 or publish_period=20")
    insert.add_options(parser, prefix="insert-")
    parser.add_argument("--no-insert", action="store_true", help="skip the insert-path measurement")
    args = parser.parse_args(argv)
    if not args.env.startswith("gym:"):
        parser.error("--env must be a gym:<id> environment (its raw step rate is measured with gymnasium)")
    try:
        actor_counts = [int(part) for part in args.actors.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--actors must be comma-separated integers, got {args.actors!r}")
    if not actor_counts or min(actor_counts) < 1:
        parser.error(f"--actors must list positive integers, got {args.actors!r}")
    profiles = [part.strip() for part in args.profiles.split(",") if part.strip()]
    unknown = [name for name in profiles if name not in PROFILES]
    if not profiles or unknown:
        parser.error(f"--profiles must list names from {', '.join(PROFILES)}, got {args.profiles!r}")
    options.check_distributed_overrides(parser, args.distributed_overrides, {
        "num_actors": "--actors", "time_budget_s": "--seconds", "num_cpus": "--num-cpus",
        "address": "a private local Ray", "envs_per_actor": "--set envs_per_actor=N"})
    insert_options = None if args.no_insert else insert.options_from_args(args, parser, prefix="insert-")
    import ray

    from distrl.experiments.distributed.config import DistributedConfig
    from distrl.experiments.distributed.ray_setup import init_ray

    cpus = args.num_cpus or os.cpu_count() or 1
    start = time.perf_counter()
    raw_rate = raw_env_steps_per_s(args.env[len("gym:"):], args.raw_seconds)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"  # Where the learner runs (learner_device auto).
    torch_rates = [pure_dqn_updates_per_s(args.env, args.overrides, args.torch_seconds, device=device)]
    rows = []
    insert_report = None
    started = init_ray(DistributedConfig(num_cpus=cpus))  # A Ray this process already runs is used as it is.
    try:
        with tempfile.TemporaryDirectory(prefix="distrl-bench-system-") as run_dir:
            for profile in profiles:
                for num_actors in actor_counts:
                    rows.append(run_one(args.env, num_actors, args.seconds, args.overrides, run_dir,
                                        profile, args.distributed_overrides))
        if not args.no_insert:
            insert_report = insert.run(**insert_options)
    finally:
        if started:
            ray.shutdown()
    torch_rates.append(pure_dqn_updates_per_s(args.env, args.overrides, args.torch_seconds, device=device))
    print(format_report(rows, raw_rate, args.env, args.seconds, cpus, max(torch_rates)))
    print(f"raw env measured again: {raw_env_steps_per_s(args.env[len('gym:'):], args.raw_seconds):,.0f} steps/s; "
          f"bare torch update before / after the runs: {torch_rates[0]:,.0f} / {torch_rates[1]:,.0f} updates/s "
          f"(the ratio uses the higher)")
    if insert_report is not None:
        print(insert.format_report(insert_report))
        print(insert_headroom(insert_report, rows))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0 if insert_report is None or insert_report["lost"] == 0 else 1


def insert_headroom(report: dict[str, Any], rows: Sequence[Row]) -> str:
    """One line: the insert path's capacity at the adder's batch size against
    the env steps per second the runs above reached (one transition per step)."""
    runtime = [r["transitions_per_s"] for r in report["rows"] if r["batch_size"] == report["runtime_batch_size"]]
    best_env = max((row.env_steps_per_s for row in rows), default=0.0)
    if not runtime or best_env <= 0:
        return "insert-path headroom: not measured at the DQN adder's batch size"
    capacity = max(runtime)
    return (f"insert-path headroom: {capacity:,.0f} transitions/s at the DQN adder's batch "
            f"{report['runtime_batch_size']} vs {best_env:,.0f} env steps/s above = {capacity / best_env:.1f}x")


if __name__ == "__main__":
    raise SystemExit(main())
