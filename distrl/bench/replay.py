"""Replay throughput: tables against a plain numpy ring buffer, in the same run.

Items are CartPole transitions (observation f32[4], action int64, reward f32,
discount f32, next_observation f32[4], no extras). Each measurement repeats
one call (insert a batch, sample a batch, or update a batch's priorities) for
``--seconds`` in all and reports transitions per second; the baseline is the
least a replay buffer can do (slice assignment in, ``rng.integers`` +
integer-array gathers out), so the ratio column is the price of the table's
bookkeeping: keys, signature checks, sampler state, rate limiter and lock.
Tables use ``MinSize(1)`` so that the limiter never waits; every buffer is
full before anything is measured, so inserts include FIFO eviction.

Machines shared with other work make single timings noisy, so every
operation is measured in ``--rounds`` short slices, interleaved with all the
others; a rate is the median over rounds, and a ratio the median of the
per-round ratios (table and baseline measured moments apart). By default time
is the measuring thread's CPU time (``time.thread_time``), which does not
count the time the process waits for a core; ``--clock wall`` uses
``time.perf_counter`` instead (nothing here sleeps or waits on a lock, so the
two agree on an idle machine).

The last column checks the aims of the replay throughput issue: uniform
insert and sample at least 0.5x the plain buffer, prioritized sampling at
least 100,000 transitions/s (at the default size and batch).

    python -m distrl.bench replay [--size 1000000] [--batch-size 256] [--seconds 1.5]
        [--rounds 10] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np

from distrl.replay import MinSize, PrioritizedSampler, Table, UniformSampler
from distrl.types import Transition

_NUM_BATCHES = 16  # Distinct pre-generated batches cycled through while measuring.

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}
"""Timers for ``--clock``: the measuring thread's CPU time, or wall-clock time."""


class Aim(NamedTuple):
    """A target for one operation: a least ratio to the plain buffer, or a least rate."""

    min_ratio: float | None = None
    min_rate: float | None = None

    def describe(self) -> str:
        """The target as printed, e.g. ``>= 0.50x`` or ``>= 100,000/s``."""
        if self.min_ratio is not None:
            return f">= {self.min_ratio:.2f}x"
        return f">= {self.min_rate:,.0f}/s"

    def met(self, rate: float, ratio: float | None) -> bool:
        """True when the measured rate (and ratio, where the aim is a ratio) reach it."""
        if self.min_ratio is not None:
            return ratio is not None and ratio >= self.min_ratio
        return rate >= self.min_rate


AIMS = {
    "uniform table insert": Aim(min_ratio=0.5),
    "uniform table sample": Aim(min_ratio=0.5),
    "prioritized table sample": Aim(min_rate=100_000),
}
"""The issue's throughput aims, by operation name."""


class NumpyRingBuffer:
    """The baseline: preallocated arrays, slice assignment, uniform integer gathers.

    Gathers use ``ndarray.take``, numpy's fastest integer-array indexing (for
    2-d leaves ``array[idx]`` is several times slower), as the tables do.
    """

    def __init__(self, max_size: int, seed: int = 0):
        self.max_size = max_size
        self.observation = np.empty((max_size, 4), np.float32)
        self.action = np.empty(max_size, np.int64)
        self.reward = np.empty(max_size, np.float32)
        self.discount = np.empty(max_size, np.float32)
        self.next_observation = np.empty((max_size, 4), np.float32)
        self.next = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def insert(self, batch: Transition) -> None:
        """Writes a batch at the ring position (in two parts where it wraps)."""
        n = batch.action.shape[0]
        i = self.next
        if i + n > self.max_size:
            split = self.max_size - i
            self.insert(Transition(*(leaf[:split] for leaf in batch[:5]), ()))
            self.insert(Transition(*(leaf[split:] for leaf in batch[:5]), ()))
            return
        self.observation[i : i + n] = batch.observation
        self.action[i : i + n] = batch.action
        self.reward[i : i + n] = batch.reward
        self.discount[i : i + n] = batch.discount
        self.next_observation[i : i + n] = batch.next_observation
        self.next = (i + n) % self.max_size
        self.size = min(self.size + n, self.max_size)

    def sample(self, batch_size: int) -> Transition:
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Transition(
            self.observation.take(idx, axis=0),
            self.action.take(idx),
            self.reward.take(idx),
            self.discount.take(idx),
            self.next_observation.take(idx, axis=0),
            (),
        )


def make_batches(batch_size: int, seed: int = 0) -> list[Transition]:
    """Random CartPole-shaped transition batches."""
    rng = np.random.default_rng(seed)
    return [
        Transition(
            observation=rng.standard_normal((batch_size, 4), dtype=np.float32),
            action=rng.integers(0, 2, size=batch_size),
            reward=np.ones(batch_size, np.float32),
            discount=np.full(batch_size, 0.99, np.float32),
            next_observation=rng.standard_normal((batch_size, 4), dtype=np.float32),
            extras=(),
        )
        for _ in range(_NUM_BATCHES)
    ]


def measure(
    step: Callable[[int], object],
    batch_size: int,
    seconds: float,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Calls ``step(i)`` for i = 0, 1, ... for about ``seconds`` of ``clock``; returns items per second."""
    calls = 0
    start = clock()
    deadline = start + seconds
    while True:
        for _ in range(32):
            step(calls)
            calls += 1
        now = clock()
        if now >= deadline:
            return calls * batch_size / (now - start)


def fill(insert: Callable[[Transition], object], batches: list[Transition], size: int) -> None:
    """Inserts batches until ``size`` items went in."""
    batch_size = batches[0].action.shape[0]
    for i in range(-(-size // batch_size)):
        insert(batches[i % len(batches)])


class Row(NamedTuple):
    """One measurement: transitions per second, the ratio to the plain buffer and the aim."""

    name: str
    rate: float
    ratio: float | None
    aim: Aim | None

    @property
    def met(self) -> bool | None:
        """Whether the aim is reached; None for rows without one."""
        return None if self.aim is None else self.aim.met(self.rate, self.ratio)


def run(
    size: int,
    batch_size: int,
    seconds: float,
    rounds: int = 10,
    clock: Callable[[], float] = time.thread_time,
) -> list[Row]:
    """Runs every measurement and returns the table rows.

    All buffers are built and filled first; then each of ``rounds`` rounds
    measures every operation for ``seconds / rounds`` in turn. A row's rate is
    the median over rounds and its ratio the median of the per-round ratios,
    so a burst of load from other processes on the machine skews one round
    of one operation, not the result.
    """
    if batch_size > size:
        raise ValueError(f"--batch-size ({batch_size}) must not exceed --size ({size})")
    if rounds < 1:
        raise ValueError(f"--rounds ({rounds}) must be >= 1")
    batches = make_batches(batch_size)
    plain = NumpyRingBuffer(size)
    uniform = Table("uniform", size, UniformSampler(seed=0), MinSize(1))
    prioritized = Table("prioritized", size, PrioritizedSampler(alpha=0.6, beta=0.4, seed=0), MinSize(1))
    for buffer in (plain, uniform, prioritized):
        fill(buffer.insert, batches, size)
    keys = [prioritized.sample(batch_size).keys for _ in range(_NUM_BATCHES)]
    rng = np.random.default_rng(1)
    priorities = [rng.exponential(size=batch_size) for _ in range(_NUM_BATCHES)]

    def inserts(buffer: NumpyRingBuffer | Table) -> Callable[[int], object]:
        return lambda i: buffer.insert(batches[i % _NUM_BATCHES])

    def samples(buffer: NumpyRingBuffer | Table) -> Callable[[int], object]:
        return lambda i: buffer.sample(batch_size)

    plain_insert, plain_sample = "numpy ring buffer insert", "numpy ring buffer sample"
    operations = {  # name: (one call, the row it is compared with)
        plain_insert: (inserts(plain), plain_insert),
        plain_sample: (samples(plain), plain_sample),
        "uniform table insert": (inserts(uniform), plain_insert),
        "uniform table sample": (samples(uniform), plain_sample),
        "prioritized table insert": (inserts(prioritized), plain_insert),
        "prioritized table sample": (samples(prioritized), plain_sample),
        "prioritized update_priorities": (
            lambda i: prioritized.update_priorities(keys[i % _NUM_BATCHES], priorities[i % _NUM_BATCHES]),
            None,
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, (step, _) in operations.items():
            rates[name].append(measure(step, batch_size, seconds / rounds, clock))
    rows = []
    for name, (_, baseline) in operations.items():
        ratio = None
        if baseline is not None:
            ratio = float(np.median(np.divide(rates[name], rates[baseline])))
        rows.append(Row(name, float(np.median(rates[name])), ratio, AIMS.get(name)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, runs the measurements and prints the table."""
    parser = argparse.ArgumentParser(
        prog="python -m distrl.bench replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="table capacity in transitions")
    parser.add_argument("--batch-size", type=int, default=256, help="transitions per insert / sample call")
    parser.add_argument(
        "--seconds", type=float, default=1.5, help="time spent measuring each operation, in seconds"
    )
    parser.add_argument(
        "--rounds", type=int, default=10, help="interleaved slices each operation's time is split into"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: the measuring thread's CPU time (robust on a shared machine); wall: elapsed time",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run(args.size, args.batch_size, args.seconds, args.rounds, CLOCKS[args.clock])
    print(format_report(rows, args.size, args.batch_size, args.rounds, args.clock))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


def format_report(rows: Sequence[Row], size: int, batch_size: int, rounds: int, clock: str) -> str:
    """The printed table: one line per operation, with its aim and PASS / BELOW AIM where it has one."""
    time_kind = "thread CPU time" if clock == "cpu" else "wall-clock time"
    lines = [
        f"replay throughput: size={size:,} batch={batch_size} CartPole transitions; "
        f"{time_kind}, medians of {rounds} interleaved rounds",
        f"{'operation':<32}{'transitions/s':>16}{'x numpy buffer':>16}  {'aim':<14}status",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        aim = "" if row.aim is None else row.aim.describe()
        status = {None: "", True: "PASS", False: "BELOW AIM"}[row.met]
        lines.append(f"{row.name:<32}{row.rate:>16,.0f}{ratio:>16}  {aim:<14}{status}".rstrip())
    judged = [row for row in rows if row.met is not None]
    lines.append(f"aims met: {sum(bool(row.met) for row in judged)}/{len(judged)}")
    return "\n".join(lines)
