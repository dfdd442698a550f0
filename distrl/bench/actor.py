"""Actor efficiency: one Ray env actor against one process stepping the same environments.

For DQN on one environment (``--env``, default gym:CartPole-v1) and each N
of ``--envs-per-actor``, measured in the same run, one after the other:

* the reference: one process (a one-CPU Ray task, as the env actor is a
  one-CPU Ray actor) builds N environments with the runtime's
  environment factory (seeded as env actor 0's), DQN's networks and its
  policy for N environments (``make_policy``: the batched epsilon-greedy
  policy for N > 1, one batched Q forward per vector step; the
  single-environment policy for N = 1, as the runtime uses then), and steps
  them for ``--seconds``: per vector step one policy call and N env steps,
  resetting finished episodes; nothing else (no adders, replay, weight
  pulls or remote calls);
* the runtime: ``run_distributed`` with one ``EnvActorWorker`` of N
  environments for ``--seconds`` of acting, with its real replay server,
  learner and weight store. The replay ratio is tiny (``samples_per_insert``
  0.01), so the rate limiter never makes the actor wait and what it reaches
  is its own ceiling. Its env steps per second and the share of its time
  spent waiting on outstanding insert calls (backpressure) come from the
  actor's own counters and clock over the steady state (polls after the
  first quarter of the run).

Both act at epsilon 0.04 from the first step (``epsilon_decay_steps=0``), so
they do the same work throughout; ``--set`` overrides any DQN field for both.
The table gives per N: the reference's env steps/s, the actor's, their
ratio (issue 13 asks for >= 0.5) and the actor's backpressure share.

    python -m distrl.bench actor [--envs-per-actor 1,8,32] [--seconds 10]
        [--env gym:CartPole-v1] [--num-cpus N] [--set KEY=VALUE ...]
        [--distributed-set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from typing import Any, NamedTuple, Sequence

from distrl.bench import options
from distrl.utils.nests import stack_nests
from distrl.utils.seeding import derive_seed

#: Config overrides every measurement starts from (``--set`` comes after them): a constant
#: epsilon, and a replay ratio so low that the learner never holds the actor back.
BASE_OVERRIDES = ("epsilon_decay_steps=0", "samples_per_insert=0.01")

#: The acceptance of issue 13: the actor reaches at least this share of the reference.
TARGET_RATIO = 0.5


class Row(NamedTuple):
    """The figures of one environment count."""

    num_envs: int
    reference_steps_per_s: float
    actor_steps_per_s: float
    backpressure_fraction: float

    @property
    def ratio(self) -> float:
        """Actor env steps/s over the reference's."""
        return self.actor_steps_per_s / self.reference_steps_per_s if self.reference_steps_per_s > 0 else 0.0


def make_config(env: str, num_envs: int, overrides: Sequence[str], run_dir: str) -> Any:
    """The DQN experiment both measurements use: N environments per actor, no evaluations,
    an unlimited step budget (runs end on their time budget)."""
    from distrl.experiments import make_experiment_config

    return make_experiment_config(
        "dqn", env, seed=0, max_env_steps=10**9,
        agent_overrides=[*BASE_OVERRIDES, f"envs_per_actor={num_envs}", *overrides],
        eval_every=10**9, eval_episodes=1, run_dir=run_dir, progress=False,
    )


def reference_steps_per_s(config: Any, seconds: float) -> float:
    """Env steps per second of one process stepping ``config``'s N environments with DQN's policy.

    The environments come from ``config.environment_factory`` with env actor 0's seeds, the
    policy from ``config.builder.make_policy`` over ``config.network_factory``'s networks, so
    they are what the runtime's actor steps; nothing else runs (no adders, replay or Ray).
    """
    import torch

    from distrl.specs import make_environment_spec

    builder = config.builder
    num_envs = builder.envs_per_actor
    torch.set_num_threads(config.torch_threads)
    if num_envs == 1:
        seeds = [derive_seed(config.seed, "env", 0)]
    else:
        seeds = [derive_seed(config.seed, "env", 0, j) for j in range(num_envs)]
    environments = [config.environment_factory(seed) for seed in seeds]
    networks = config.network_factory(make_environment_spec(environments[0]))
    policy = builder.make_policy(networks, evaluation=False, seed=derive_seed(config.seed, "policy", 0),
                                 exploration=builder.actor_exploration(0, 1))
    observations = [environment.reset().observation for environment in environments]
    vector_steps_per_check = max(1, 256 // num_envs)
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(vector_steps_per_check):
            if num_envs == 1:
                actions = [policy(observations[0])]
            else:
                actions, _ = policy.select_actions(stack_nests(observations))
            for index, environment in enumerate(environments):
                timestep = environment.step(actions[index])
                observations[index] = environment.reset().observation if timestep.last() else timestep.observation
        steps += vector_steps_per_check * num_envs
    elapsed = time.perf_counter() - start
    for environment in environments:
        environment.close()
    return steps / elapsed


def actor_figures(config: Any, seconds: float, distributed_overrides: Sequence[str] = ()) -> tuple[float, float]:
    """(env steps/s, backpressure share) of the one env actor of a ``run_distributed`` run of
    ``seconds``, over its steady state, by the actor's own clock and counters;
    ``distributed_overrides`` are ``KEY=VALUE`` settings of its ``DistributedConfig``."""
    from distrl.experiments.distributed import DistributedConfig, run_distributed
    from distrl.utils.config import apply_overrides

    polls: list[tuple[float, int, float, float]] = []

    def on_poll(state: Any) -> None:
        stats = state.actor_stats[0]
        if stats is not None:
            polls.append((state.elapsed_s, int(stats["env_steps"]), float(stats["insert_wait_s"]),
                          float(stats["elapsed_s"])))

    dist_config = apply_overrides(DistributedConfig(num_actors=1, time_budget_s=seconds, poll_interval_s=0.25),
                                  list(distributed_overrides), "DistributedConfig")
    summary = run_distributed(config, dist_config, on_poll=on_poll)
    steady = [poll for poll in polls if poll[0] >= seconds / 4]
    if len(steady) < 2:
        steady = polls[-2:]
    if len(steady) < 2 or steady[-1][3] <= steady[0][3]:  # Too short a run for two polls: the whole run.
        dist = summary["distributed"]
        return float(dist["env_steps_per_s_per_actor"][0]), float(dist["actor_backpressure_wait_fraction"])
    (_, steps0, wait0, clock0), (_, steps1, wait1, clock1) = steady[0], steady[-1]
    span = clock1 - clock0
    return (steps1 - steps0) / span, (wait1 - wait0) / span


def measure(env: str, env_counts: Sequence[int], seconds: float, overrides: Sequence[str],
            num_cpus: int, distributed_overrides: Sequence[str] = ()) -> list[Row]:
    """One row per N: the reference, then the Ray actor, on one private Ray instance
    (or the one this process already has).

    The reference runs as a one-CPU Ray task, a process like the env actor's (which gets one
    CPU when the instance has two or more): outside Ray, numpy's OpenBLAS would use every core
    for the batched forward, and its [32, 128] x [128, 128] product measured about 200x slower
    than on one thread on a busy two-core machine."""
    import ray

    from distrl.experiments.distributed.config import DistributedConfig
    from distrl.experiments.distributed.ray_setup import init_ray

    rows = []
    started = init_ray(DistributedConfig(num_cpus=num_cpus))
    # The reference runs in a Ray worker with the env actor's one CPU, so both see the same thread
    # settings: Ray sets OMP_NUM_THREADS (which OpenBLAS reads) from the CPUs it gives a worker.
    reference_task = ray.remote(num_cpus=1, max_retries=0)(reference_steps_per_s)
    try:
        with tempfile.TemporaryDirectory(prefix="distrl-bench-actor-") as run_dir:
            for num_envs in env_counts:
                config = make_config(env, num_envs, overrides, run_dir)
                reference = ray.get(reference_task.remote(config, seconds))
                actor_rate, backpressure = actor_figures(config, seconds, distributed_overrides)
                rows.append(Row(num_envs, reference, actor_rate, backpressure))
    finally:
        if started:
            ray.shutdown()
    return rows


def format_report(rows: Sequence[Row], env: str, seconds: float, cpus: int) -> str:
    """The printed table: one line per environment count, with the verdict against ``TARGET_RATIO``."""
    lines = [
        f"actor efficiency: dqn on {env}, {seconds:g} s per measurement, {cpus} CPUs; "
        f"reference = one process stepping the same envs with the same policy (no adders, replay or remote calls); "
        f"actor = one Ray env actor with replay, samples_per_insert 0.01 (never throttled)",
        f"{'envs':>5}{'reference steps/s':>19}{'actor steps/s':>15}{'ratio':>7}{'backpressure':>14}  "
        f">= {TARGET_RATIO:g}x",
    ]
    for row in rows:
        verdict = "yes" if row.ratio >= TARGET_RATIO else "NO"
        lines.append(f"{row.num_envs:>5}{row.reference_steps_per_s:>19,.0f}{row.actor_steps_per_s:>15,.0f}"
                     f"{row.ratio:>7.2f}{row.backpressure_fraction:>14.1%}  {verdict}")
    return "\n".join(lines)


def check_experiment(env: str, env_counts: Sequence[int], overrides: Sequence[str]) -> None:
    """Raises ValueError (or ImportError for a missing extra) naming what is wrong when DQN
    cannot run on ``env`` with ``overrides`` for some N, before any measurement starts."""
    from distrl.experiments.config import build_networks
    from distrl.specs import make_environment_spec

    configs = [make_config(env, num_envs, overrides, tempfile.gettempdir()) for num_envs in env_counts]
    config = configs[-1]  # Every N's config is checked above; one environment probe serves them all.
    probe = config.environment_factory(0)
    try:
        build_networks(config, make_environment_spec(probe))
    finally:
        probe.close()


def _env_counts(text: str) -> list[int]:
    """Comma-separated positive integers; raises ValueError naming ``text`` otherwise."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise ValueError(f"--envs-per-actor must list positive integers separated by commas, got {text!r}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, measures every environment count and prints the table."""
    parser = argparse.ArgumentParser(prog="python -m distrl.bench actor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs-per-actor", default="1,8,32",
                        help="comma-separated environment counts N, one reference and one actor run each")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds of each measurement (the reference, and the actor's acting)")
    parser.add_argument("--env", default="gym:CartPole-v1", help="an environment with discrete actions")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the private Ray instance (default: all, at least 2)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DQN config field for both measurements (repeatable)")
    options.add_distributed_set(parser, "min_insert_interval_s=0.02 (the actor's run)")
    args = parser.parse_args(argv)
    try:
        env_counts = _env_counts(args.envs_per_actor)
    except ValueError as error:
        parser.error(str(error))
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        parser.error(f"--seconds must be a finite number > 0, got {args.seconds!r}")
    if args.num_cpus is not None and args.num_cpus < 2:
        parser.error(f"--num-cpus must be >= 2 (one for the learner, one for the actor), got {args.num_cpus!r}")
    options.check_distributed_overrides(parser, args.distributed_overrides, {
        "num_actors": "this benchmark (one actor)", "time_budget_s": "--seconds", "num_cpus": "--num-cpus",
        "address": "a private local Ray", "poll_interval_s": "this benchmark", "envs_per_actor": "--envs-per-actor"})
    try:
        check_experiment(args.env, env_counts, args.overrides)
    except (ValueError, ImportError) as error:
        parser.error(f"--env {args.env} with --set {args.overrides}: {error}")
    cpus = args.num_cpus or max(2, os.cpu_count() or 1)
    start = time.perf_counter()
    rows = measure(args.env, env_counts, args.seconds, args.overrides, cpus, args.distributed_overrides)
    print(format_report(rows, args.env, args.seconds, cpus))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
