"""The learner against bare torch without Ray: what the learner's own data path costs.

``bench system`` gives the distributed learner's updates/s against a bare
torch loop of the same update, but it needs Ray. This benchmark runs the
learner's side of that path in one process, so it also runs where Ray cannot
(a GPU machine that has torch but cannot install Ray, for one):

* bare torch (``torch_reference.pure_dqn_updates_per_s``): the DQN update on
  one fixed batch that never leaves the device;
* the learner: the agent's ``DQNLearner`` (``builder.make_learner``) reading
  a ``PrefetchingIterator`` as the distributed learner does
  (``DistributedConfig.prefetch`` calls in flight, ``sample_batches_per_call``
  batches per call; on CUDA pinned memory and non-blocking copies), over a
  ``LocalReplayClient`` in place of the Ray replay client. The table holds
  ``--table-size`` random transitions of the environment's spec and samples
  uniformly, so the learner gets fresh host batches as it would from a
  replay server.

Both run on one torch thread (as the learner does) on ``--device`` (auto:
CUDA when there is one), one batch size of ``--batch-sizes`` at a time, and
the learner's updates/s over bare torch's is the figure. What Ray adds (the
sample calls' transport and deserialisation, weight publishes) is left out:
``bench system`` measures it.

    python -m distrl.bench learner [--env gym:CartPole-v1] [--batch-sizes 64,256]
        [--device auto|cpu|cuda] [--seconds 10] [--set KEY=VALUE ...]

For the Nature CNN at Atari's input size without an emulator:
``--env distrl.envs.image_tasks:atari_shaped`` (uint8 [4, 84, 84]) with
``--batch-sizes 32,256,512``.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np
import torch

from distrl.bench.torch_reference import dqn_experiment, pure_dqn_updates_per_s, random_leaves


def _random_transitions(spec, size: int, num_actions: int, rng: np.random.Generator):
    """``size`` random DQN transitions of ``spec`` (numpy leaves with a leading axis ``size``)."""
    from distrl.types import Transition

    return Transition(
        observation=random_leaves(spec.observations, size, rng),
        action=rng.integers(0, num_actions, size=size).astype(np.int64),
        reward=rng.standard_normal(size).astype(np.float32),
        discount=np.full(size, 0.97, np.float32),
        next_observation=random_leaves(spec.observations, size, rng),
    )


def learner_updates_per_s(env: str, overrides: Sequence[str], seconds: float, device: str,
                          table_size: int, seed: int = 0) -> float:
    """Updates per second of ``DQNLearner.step()`` for ``env`` with the DQN ``overrides`` on
    ``device``, fed by a ``PrefetchingIterator`` over an in-process table of ``table_size`` random
    transitions (see the module docstring), after a warm-up of 2 sample calls' worth of steps."""
    from distrl.experiments.distributed.config import DistributedConfig
    from distrl.replay.client import LocalReplayClient
    from distrl.replay.prefetch import PrefetchingIterator
    from distrl.replay.rate_limiters import MinSize
    from distrl.replay.samplers import UniformSampler
    from distrl.replay.table import Table
    from distrl.utils.counting import Counter
    from distrl.utils.loggers import NullLogger

    config, spec = dqn_experiment(env, overrides, seed)
    dqn = config.agent_config
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    dist = DistributedConfig()
    iterator = None
    try:
        networks = config.network_factory(spec)
        table = Table("transitions", table_size, UniformSampler(seed=seed), MinSize(dqn.batch_size))
        table.insert(_random_transitions(spec, table_size, networks.num_actions, np.random.default_rng(seed)),
                     block=False)
        client = LocalReplayClient(table)
        iterator = PrefetchingIterator(client, dqn.batch_size, dist.prefetch, device,
                                       batches_per_call=dist.sample_batches_per_call)
        learner = config.builder.make_learner(networks, iterator, client, Counter(), NullLogger(),
                                              torch.device(device))
        for _ in range(2 * dist.sample_batches_per_call):
            learner.step()
        if device != "cpu":
            torch.cuda.synchronize()
        updates = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(16):
                learner.step()
            updates += 16
        if device != "cpu":
            torch.cuda.synchronize()
        return updates / (time.perf_counter() - start)
    finally:
        if iterator is not None:
            iterator.close()
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distrl.bench learner", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--env", default="gym:CartPole-v1", help="an environment name (as distrl train --env)")
    parser.add_argument("--batch-sizes", default="64", help="comma-separated DQN batch sizes, one row each")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where both loops run (auto: CUDA when there is one)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds measured per loop and batch size")
    parser.add_argument("--table-size", type=int, default=20_000, help="random transitions the learner samples")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DQN config field (repeatable); batch_size comes from --batch-sizes")
    args = parser.parse_args(argv)
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        parser.error(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}")
    if not batch_sizes or min(batch_sizes) < 1:
        parser.error(f"--batch-sizes must hold positive integers, got {args.batch_sizes!r}")
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if args.table_size < max(batch_sizes):
        parser.error(f"--table-size must be >= the largest batch size ({max(batch_sizes)}), got {args.table_size}")
    if any(o.split("=", 1)[0].strip() == "batch_size" for o in args.overrides):
        parser.error("--set batch_size=...: the batch sizes come from --batch-sizes")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU, 1 torch thread"
    print(f"DQN on {args.env}, {where}, torch {torch.__version__}; {args.seconds:g} s per loop")
    print("| batch | bare torch (updates/s) | learner (updates/s) | x bare torch |")
    print("|---|---|---|---|")
    for batch_size in batch_sizes:
        overrides = [*args.overrides, f"batch_size={batch_size}", f"min_replay_size={batch_size}"]
        bare = pure_dqn_updates_per_s(args.env, overrides, args.seconds, device=device)
        learner = learner_updates_per_s(args.env, overrides, args.seconds, device, args.table_size)
        print(f"| {batch_size} | {bare:,.0f} | {learner:,.0f} | {learner / bare:.2f} |", flush=True)
    return 0
