"""Insert-path capacity: writer actors inserting DQN transitions into one replay server.

W writer Ray actors (``--writers``, one run per count) each insert pre-built
batches of CartPole DQN transitions through a real ``RayReplayClient`` (with
the runtime's ``max_in_flight_inserts`` and the default insert coalescing:
once k calls are outstanding, batches merge into calls of up to
``DEFAULT_MAX_COALESCED_ITEMS``) into one ``ReplayServer`` for
``--seconds`` after a ``--warmup``. The batches are the real ``Transition``
nest the DQN adder writes (observation f32[4], action int64, reward and
discount f32, next_observation f32[4], extras {'policy_version': int64}),
made by the real ``NStepTransitionAdder`` on gymnasium's CartPole with
random actions. The table is shaped like DQN's (uniform sampler, DQN's
``max_replay_size``) but its rate limiter is ``MinSize``, so inserts never
wait on sampling and nothing samples: the figure is the insert path's
capacity, not what a learner-bound run sustains.

Reported per (writers, batch size):

* transitions/s into the server, counted by the server (the difference of
  ``info()["inserts"]`` at the start and end of the measured window), and
  insert calls/s (that divided by the writers' mean items per call, which
  merging raises above the batch size);
* the ratio to the same table's ``Table.insert`` rate in this process, with
  no Ray (same batch size, same batches, table full so FIFO eviction is
  included; median of short slices, measured in the same run);
* the writers' backpressure share (time blocked on ``max_in_flight_inserts``
  outstanding calls), and a check that every submitted item arrived.

Batch sizes default to the DQN adder's (``adder_batch_size``, what the
actors really send) and 256, to show how batch size drives capacity. At the
adder's batch size the same writer counts also run with coalescing off
(``max_coalesced_items=0``: one call per batch), the baseline coalescing is
measured against (``--no-baseline`` skips it); ``--max-coalesced-items``
sets the merge limit of the other rows (e.g. 50, what the server allows into
DQN's default ratio-limited table). The aim of the issue is at
least 100,000 transitions/s into the replay server.
``--profile`` adds a breakdown of one writer's per-call cost (coalescing
off, so a call is one batch): the same
items as one flat uint8 array (what the nest's many small leaves cost to
serialize), the flat array into a no-op server (Ray's fixed per-call
cost), and in-process microseconds of ``Table.insert`` and of Ray's
serialization of the call's payload.

Times are wall-clock; on a machine shared with other work the rates are
lower bounds.

    python -m distrl.bench insert [--writers 1,2] [--batch-sizes 16,256] [--seconds 3]
        [--warmup 1] [--num-cpus N] [--max-coalesced-items 256] [--no-baseline] [--profile]
"""

from __future__ import annotations

import argparse
import functools
import os
import threading
import time
from typing import Any, NamedTuple, Sequence

import numpy as np

from distrl.types import Transition

AIM_TRANSITIONS_PER_S = 100_000
"""The issue's aim for the insert path into the replay server, in transitions per second."""

TABLE = "transitions"
_NUM_BATCHES = 8  # Distinct pre-built batches each writer cycles through.
_STOP_MARGIN_S = 120.0  # A writer stops by itself this long after its run should have ended.


def dqn_defaults() -> dict[str, int]:
    """The runtime's figures the benchmark copies: DQN's adder batch and replay
    sizes and ``DistributedConfig.max_in_flight_inserts``."""
    from distrl.agents.dqn.config import Config
    from distrl.experiments.distributed.config import DistributedConfig

    config = Config()
    return {
        "adder_batch_size": config.adder_batch_size,
        "max_replay_size": config.max_replay_size,
        "min_replay_size": config.min_replay_size,
        "max_in_flight_inserts": DistributedConfig().max_in_flight_inserts,
        "n_step": config.n_step,
    }


class _Capture:
    """A ``ReplayClient`` stand-in that keeps what the adder inserts."""

    def __init__(self) -> None:
        self.batches: list[Transition] = []

    def insert(self, items: Transition, priorities: np.ndarray | None = None) -> None:
        self.batches.append(items)


def make_batches(batch_size: int, num_batches: int = _NUM_BATCHES, seed: int = 0) -> list[Transition]:
    """Batches of ``batch_size`` DQN transitions made by the real n-step adder.

    The adder (DQN's n-step and discount) is fed gymnasium CartPole-v1 through
    the project's environment adapter, random int64 actions and
    ``{'policy_version': int64}`` extras, exactly what an env actor passes it;
    its ``max_batch_size`` is set to ``batch_size``.
    """
    from distrl.adders.nstep import NStepTransitionAdder
    from distrl.agents.dqn.config import Config
    from distrl.envs.registry import make_environment

    config = Config()
    environment = make_environment("gym:CartPole-v1", seed)
    capture = _Capture()
    adder = NStepTransitionAdder(capture, n_step=config.n_step, discount=config.discount, max_batch_size=batch_size)
    rng = np.random.default_rng(seed)
    timestep = environment.reset()
    adder.add_first(timestep)
    version = 0
    while len(capture.batches) < num_batches:
        action = np.int64(rng.integers(2))
        timestep = environment.step(action)
        adder.add(action, timestep, extras={"policy_version": np.int64(version // 100)})
        version += 1
        if timestep.last():
            timestep = environment.reset()
            adder.add_first(timestep)
    environment.close()
    return capture.batches


def flat_payloads(batches: Sequence[Transition]) -> list[np.ndarray]:
    """The same items as one uint8 array each, ``(batch, bytes per transition)``.

    Every leaf's rows are laid side by side, so a flat payload carries the
    same bytes and item count as its batch in a single leaf.
    """
    flat = []
    for batch in batches:
        leaves = [batch.observation, batch.action, batch.reward, batch.discount, batch.next_observation,
                  *batch.extras.values()]
        rows = [np.ascontiguousarray(leaf).reshape(leaf.shape[0], -1).view(np.uint8) for leaf in leaves]
        flat.append(np.concatenate(rows, axis=1))
    return flat


def make_tables(max_size: int, min_size: int) -> list:
    """DQN's table shape with a ``MinSize`` limiter: inserts never wait, nothing samples."""
    from distrl.replay import MinSize, Table, UniformSampler

    return [Table(TABLE, max_size, UniformSampler(seed=0), MinSize(min_size))]


class NoOpServer:
    """A no-op replay server: ``insert`` counts the items and drops them.

    Hosted with the same concurrency groups as ``ReplayServer``, so a run
    against it measures Ray's per-call cost alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inserts = 0

    def insert(self, table: str, items: Any, priorities: Any = None, timeout: float = 0.0) -> int:
        from distrl.replay.client import stacked_length

        num_items = stacked_length(items)
        with self._lock:
            self._inserts += num_items
        return num_items

    def info(self, table: str | None = None) -> dict[str, Any]:
        with self._lock:
            return {"inserts": self._inserts}

    def coalescing_limit(self, table: str) -> int:
        """No table to protect: the client's own ``max_coalesced_items`` applies."""
        return 2**31 - 1


def _start_server(kind: str, num_writers: int, max_in_flight: int, max_size: int, min_size: int):
    """A replay (or no-op) server sized like the runtime's: insert threads = writers * k + 2."""
    import ray

    from distrl.replay.server import CONTROL_CONCURRENCY, create_replay_server

    insert_concurrency = num_writers * max_in_flight + 2
    if kind == "replay":
        return create_replay_server(functools.partial(make_tables, max_size, min_size),
                                    insert_concurrency=insert_concurrency)
    null_class = ray.remote(concurrency_groups={"insert": insert_concurrency, "sample": 1})(
        type("NoOpReplayServer", (NoOpServer,), {
            "insert": ray.method(concurrency_group="insert")(NoOpServer.insert),
        })
    )
    return null_class.options(max_concurrency=CONTROL_CONCURRENCY, num_cpus=0).remote()


class InsertWriter:
    """The body of a writer actor: inserts its payloads in a loop through a ``RayReplayClient``.

    ``run`` and ``stop`` are called concurrently (the actor has two threads).
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._client = None
        self._payloads: list = []

    def setup(self, server: Any, table: str, payloads: list, max_in_flight: int,
              max_coalesced_items: int) -> None:
        """Points the writer at a server and gives it the payloads to cycle through."""
        from distrl.replay.server import RayReplayClient

        self._client = RayReplayClient(server, table, max_in_flight_inserts=max_in_flight,
                                       max_coalesced_items=max_coalesced_items)
        self._payloads = list(payloads)
        self._stop.clear()

    def run(self, max_seconds: float) -> dict[str, float]:
        """Inserts until ``stop`` (or ``max_seconds``), then waits for every
        outstanding insert; returns the client's counters and the run's length."""
        client, payloads, stop = self._client, self._payloads, self._stop
        start = time.perf_counter()
        deadline = start + max_seconds
        calls = 0
        while not stop.is_set():
            client.insert(payloads[calls % len(payloads)])
            calls += 1
            if calls % 64 == 0 and time.perf_counter() > deadline:
                break
        client.flush()
        stats = dict(client.stats())
        stats["run_s"] = time.perf_counter() - start
        return stats

    def stop(self) -> None:
        self._stop.set()


class Row(NamedTuple):
    """One measurement of W writers at one batch size."""

    writers: int
    batch_size: int
    server: str  # "replay" or "no-op"
    payload: str  # "transition" (the DQN nest) or "flat" (one uint8 array)
    max_coalesced_items: int  # The writers' client setting; 0: coalescing off, one call per batch.
    transitions_per_s: float
    calls_per_s: float
    items_per_call: float  # Mean over the writers' whole runs (> batch_size when calls merged).
    in_process_per_s: float | None
    submitted: int
    server_inserts: int
    backpressure_fraction: float

    @property
    def ratio(self) -> float | None:
        """Transitions/s into the server over the in-process ``Table.insert`` rate."""
        if not self.in_process_per_s:
            return None
        return self.transitions_per_s / self.in_process_per_s

    @property
    def lost(self) -> int:
        """Items submitted by the writers that the server did not count (0 when none was lost)."""
        return self.submitted - self.server_inserts

    @property
    def aim_met(self) -> bool:
        return self.transitions_per_s >= AIM_TRANSITIONS_PER_S

    def as_dict(self) -> dict[str, Any]:
        return {**self._asdict(), "ratio": self.ratio, "lost": self.lost, "aim_met": self.aim_met}


def in_process_rate(batches: Sequence[Transition], max_size: int, min_size: int, seconds: float,
                    slices: int = 5) -> float:
    """``Table.insert`` transitions/s of the benchmark's table in this process (no Ray).

    The table is filled first, so inserts include FIFO eviction as in the
    server's steady state; the rate is the median of ``slices`` wall-clock slices.
    """
    from distrl.bench.replay import fill, measure

    table = make_tables(max_size, min_size)[0]
    fill(table.insert, list(batches), max_size)
    batch_size = batches[0].action.shape[0]
    step = lambda i: table.insert(batches[i % len(batches)])  # noqa: E731
    rates = [measure(step, batch_size, seconds / slices, time.perf_counter) for _ in range(slices)]
    return float(np.median(rates))


def micro_costs(batch: Transition, flat: np.ndarray, max_size: int, min_size: int) -> dict[str, float | None]:
    """In-process microseconds per call of the pieces of one insert (for ``--profile``)."""
    import pickle

    def per_call_us(fn: Any, seconds: float = 0.2) -> float:
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(20):
                fn()
            calls += 20
        return (time.perf_counter() - start) / calls * 1e6

    table = make_tables(max_size, min_size)[0]
    table.insert(batch)
    costs: dict[str, float | None] = {
        "table_insert_us": per_call_us(lambda: table.insert(batch)),
        "pickle_dumps_us": per_call_us(lambda: pickle.dumps(batch, protocol=5)),
        "pickle_loads_us": per_call_us(functools.partial(pickle.loads, pickle.dumps(batch, protocol=5))),
        "ray_serialize_transition_us": None,
        "ray_serialize_flat_us": None,
    }
    try:  # Ray's own serializer for task arguments (a private API; skipped when it moves).
        import ray

        context = ray._private.worker.global_worker.get_serialization_context()
        costs["ray_serialize_transition_us"] = per_call_us(lambda: context.serialize(batch))
        costs["ray_serialize_flat_us"] = per_call_us(lambda: context.serialize(flat))
    except Exception:  # noqa: BLE001
        pass
    return costs


def run_one(writers: list, num_writers: int, payloads: list, batch_size: int, server_kind: str,
            payload_kind: str, seconds: float, warmup: float, defaults: dict[str, int],
            in_process: float | None, max_coalesced_items: int) -> Row:
    """One measurement: a fresh server, the first ``num_writers`` of ``writers``
    inserting ``payloads`` (``batch_size`` items each) for warmup + seconds,
    their clients merging up to ``max_coalesced_items`` (0: off)."""
    import ray

    max_in_flight = defaults["max_in_flight_inserts"]
    server = _start_server(server_kind, num_writers, max_in_flight, defaults["max_replay_size"],
                           defaults["min_replay_size"])
    active = writers[:num_writers]
    try:
        ray.get([w.setup.remote(server, TABLE, payloads, max_in_flight, max_coalesced_items) for w in active])
        runs = [w.run.remote(warmup + seconds + _STOP_MARGIN_S) for w in active]
        try:
            time.sleep(warmup)
            t0, inserts0 = _timed_inserts(server)
            time.sleep(seconds)
            t1, inserts1 = _timed_inserts(server)
        finally:
            ray.get([w.stop.remote() for w in active])
            stats = ray.get(runs)
        final = int(ray.get(server.info.remote(TABLE))["inserts"])
    finally:
        ray.kill(server)
    rate = (inserts1 - inserts0) / max(t1 - t0, 1e-9)
    waited = sum(s["insert_wait_s"] for s in stats)
    items_per_call = sum(s["items_inserted"] for s in stats) / max(sum(s["insert_calls"] for s in stats), 1.0)
    return Row(
        writers=num_writers,
        batch_size=batch_size,
        server=server_kind,
        payload=payload_kind,
        max_coalesced_items=max_coalesced_items,
        transitions_per_s=rate,
        calls_per_s=rate / items_per_call,
        items_per_call=items_per_call,
        in_process_per_s=in_process,
        submitted=int(sum(s["items_inserted"] for s in stats)),
        server_inserts=final,
        backpressure_fraction=waited / max(sum(s["run_s"] for s in stats), 1e-9),
    )


def _timed_inserts(server: Any) -> tuple[float, int]:
    """The server's insert count and the midpoint of the call that read it."""
    import ray

    before = time.perf_counter()
    inserts = int(ray.get(server.info.remote(TABLE))["inserts"])
    return (before + time.perf_counter()) / 2, inserts


def _measure_all(
    writers: list, writer_counts: Sequence[int], batch_sizes: Sequence[int], seconds: float, warmup: float,
    profile: bool, baseline_seconds: float, defaults: dict[str, int], max_coalesced_items: int,
    off_baseline: bool = True,
) -> tuple[list[Row], dict[int, float], list[Row], dict[int, dict[str, float | None]]]:
    """Every row of ``run``: per batch size the in-process baseline, one row per
    writer count merging up to ``max_coalesced_items``, at the adder's batch
    size (with ``off_baseline``) one more per writer count with coalescing off
    and, with ``profile``, the breakdown rows (coalescing off) and micro costs."""

    rows: list[Row] = []
    in_process: dict[int, float] = {}
    profile_rows: list[Row] = []
    micro: dict[int, dict[str, float | None]] = {}
    measure_row = functools.partial(run_one, writers, seconds=seconds, warmup=warmup, defaults=defaults)
    for batch_size in batch_sizes:
        batches = make_batches(batch_size)
        in_process[batch_size] = in_process_rate(
            batches, defaults["max_replay_size"], defaults["min_replay_size"], baseline_seconds
        )
        settings = [max_coalesced_items]
        if off_baseline and batch_size == defaults["adder_batch_size"]:
            settings.append(0)
        for merge_limit in settings:
            for num_writers in writer_counts:
                rows.append(measure_row(num_writers, batches, batch_size, "replay", "transition",
                                        in_process=in_process[batch_size], max_coalesced_items=merge_limit))
        if profile:
            flat = flat_payloads(batches)
            micro[batch_size] = micro_costs(batches[0], flat[0], defaults["max_replay_size"],
                                            defaults["min_replay_size"])
            one_writer = [row for row in rows if row.batch_size == batch_size and row.writers == 1
                          and row.max_coalesced_items == 0]
            profile_rows.append(one_writer[0] if one_writer else measure_row(
                1, batches, batch_size, "replay", "transition", in_process=in_process[batch_size],
                max_coalesced_items=0))
            for server_kind in ("replay", "no-op"):
                profile_rows.append(measure_row(1, flat, batch_size, server_kind, "flat", in_process=None,
                                                max_coalesced_items=0))
    return rows, in_process, profile_rows, micro


def run(
    writer_counts: Sequence[int] = (1, 2),
    batch_sizes: Sequence[int] | None = None,
    seconds: float = 3.0,
    warmup: float = 1.0,
    profile: bool = False,
    baseline_seconds: float = 0.5,
    num_cpus: int | None = None,
    max_coalesced_items: int | None = None,
    off_baseline: bool = True,
) -> dict[str, Any]:
    """Runs every measurement on the Ray instance of this process (starting a
    private local one, and shutting it down after, when there is none) and
    returns the report as a dict: ``rows`` (one per writers x batch size with
    the clients merging up to ``max_coalesced_items``, None: the client's
    default, then, with ``off_baseline``, one per writer count at the adder's
    batch size with coalescing off; see ``Row.as_dict``),
    ``in_process`` (batch size -> transitions/s), the aim, the runtime's
    figures copied, and ``profile`` (None without it).
    """
    import ray

    from distrl.experiments.distributed.config import DistributedConfig
    from distrl.experiments.distributed.ray_setup import init_ray
    from distrl.replay.server import DEFAULT_MAX_COALESCED_ITEMS

    defaults = dqn_defaults()
    if max_coalesced_items is None:
        max_coalesced_items = DEFAULT_MAX_COALESCED_ITEMS
    if max_coalesced_items < 1:
        raise ValueError(f"max_coalesced_items must be >= 1 (the off rows are the baseline), got {max_coalesced_items}")
    if batch_sizes is None:
        batch_sizes = sorted({defaults["adder_batch_size"], 256})
    if not writer_counts or min(writer_counts) < 1:
        raise ValueError(f"writer counts must be positive integers, got {list(writer_counts)}")
    if not batch_sizes or min(batch_sizes) < 1 or max(batch_sizes) > defaults["max_replay_size"]:
        raise ValueError(f"batch sizes must be in [1, {defaults['max_replay_size']}], got {list(batch_sizes)}")
    if seconds <= 0 or warmup < 0:
        raise ValueError(f"seconds ({seconds}) must be > 0 and warmup ({warmup}) >= 0")
    started = init_ray(DistributedConfig(num_cpus=num_cpus))
    try:
        writer_class = ray.remote(InsertWriter).options(num_cpus=0, max_concurrency=2)
        writers = [writer_class.remote() for _ in range(max(writer_counts))]
        try:
            rows, in_process, profile_rows, micro = _measure_all(
                writers, writer_counts, batch_sizes, seconds, warmup, profile, baseline_seconds, defaults,
                max_coalesced_items, off_baseline,
            )
        finally:
            for writer in writers:
                ray.kill(writer)
        cpus = ray.cluster_resources().get("CPU")
    finally:
        if started:
            ray.shutdown()
    runtime_rows = [row for row in rows if row.batch_size == defaults["adder_batch_size"]
                    and row.max_coalesced_items == max_coalesced_items]
    shared = {id(row) for row in rows}
    measured = rows + [row for row in profile_rows if id(row) not in shared]  # The shared 1-writer row once.
    return {
        "aim_transitions_per_s": AIM_TRANSITIONS_PER_S,
        "runtime_batch_size": defaults["adder_batch_size"],
        "max_in_flight_inserts": defaults["max_in_flight_inserts"],
        "max_coalesced_items": max_coalesced_items,
        "table": {"max_size": defaults["max_replay_size"], "sampler": "uniform",
                  "rate_limiter": f"MinSize({defaults['min_replay_size']})"},
        "seconds": seconds,
        "warmup_s": warmup,
        "cpus": None if cpus is None else int(cpus),
        "in_process": in_process,
        "rows": [row.as_dict() for row in rows],
        "aim_met": any(row.aim_met for row in rows),
        "aim_met_at_runtime_batch": any(row.aim_met for row in runtime_rows) if runtime_rows else None,
        "lost": sum(row.lost for row in measured),
        "profile": None if not profile else {
            "rows": [row.as_dict() for row in profile_rows],
            "micro_us": micro,
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """The printed table: one line per (writers, batch size), the aim's verdict
    and, with ``--profile``, the per-call breakdown."""
    table = report["table"]
    cpus = report["cpus"]
    lines = [
        f"insert path: W writer actors -> RayReplayClient (max_in_flight_inserts={report['max_in_flight_inserts']}, "
        f"merging up to max_coalesced_items={report['max_coalesced_items']} once k calls are outstanding; "
        f"'off' rows: 0, one call per batch) -> one ReplayServer; real DQN CartPole Transition batches",
        f"table {table['sampler']} sampler, max_size={table['max_size']:,}, {table['rate_limiter']} limiter: "
        f"inserts never wait on sampling, nothing samples (capacity, not a learner-bound run)",
        f"{report['seconds']:g} s measured after {report['warmup_s']:g} s warm-up per row, wall-clock"
        f"{'' if cpus is None else f', {cpus} Ray CPUs'}; transitions counted by the server (info()['inserts']); "
        f"DQN's adder batch is {report['runtime_batch_size']}",
        f"{'writers':>7}{'batch':>7}{'merge':>7}{'transitions/s':>15}{'calls/s':>9}{'items/call':>12}"
        f"{'in-process/s':>14}{'x in-proc':>11}{'backpressure':>14}{'lost':>6}"
        f"  aim >= {report['aim_transitions_per_s']:,}/s",
    ]
    for row in report["rows"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
        merge = str(row["max_coalesced_items"]) if row["max_coalesced_items"] else "off"
        lines.append(
            f"{row['writers']:>7}{row['batch_size']:>7}{merge:>7}{row['transitions_per_s']:>15,.0f}"
            f"{row['calls_per_s']:>9,.0f}{row['items_per_call']:>12,.1f}"
            f"{row['in_process_per_s']:>14,.0f}{ratio:>11}{row['backpressure_fraction']:>14.0%}{row['lost']:>6}"
            f"  {'PASS' if row['aim_met'] else 'BELOW AIM'}"
        )
    lines.append(_verdict(report))
    profile = report.get("profile")
    if profile:
        lines.append("profile, 1 writer, coalescing off: wall-clock us per insert call (1e6 / calls/s); "
                     "'flat' sends the same items as one uint8 array")
        lines.append(f"{'batch':>7}  {'payload':<12}{'server':<8}{'calls/s':>9}{'us/call':>9}")
        for row in profile["rows"]:
            lines.append(f"{row['batch_size']:>7}  {row['payload']:<12}{row['server']:<8}"
                         f"{row['calls_per_s']:>9,.0f}{1e6 / max(row['calls_per_s'], 1e-9):>9,.0f}")
        for batch_size, costs in profile["micro_us"].items():
            by_key = {(r["payload"], r["server"]): 1e6 / max(r["calls_per_s"], 1e-9)
                      for r in profile["rows"] if r["batch_size"] == batch_size}
            parts = [f"Table.insert {costs['table_insert_us']:.1f}"]
            if costs["ray_serialize_transition_us"] is not None:
                parts.append(f"Ray serialize transition {costs['ray_serialize_transition_us']:.1f} / "
                             f"flat {costs['ray_serialize_flat_us']:.1f}")
            parts.append(f"pickle dumps {costs['pickle_dumps_us']:.1f} / loads {costs['pickle_loads_us']:.1f}")
            lines.append(f"  batch {batch_size}: in-process us per call: " + ", ".join(parts))
            if len(by_key) == 3:
                fixed = by_key[("flat", "no-op")]
                nest = by_key[("transition", "replay")] - by_key[("flat", "replay")]
                server = by_key[("flat", "replay")] - fixed
                total = by_key[("transition", "replay")]
                lines.append(
                    f"  batch {batch_size}: of {total:,.0f} us per call, Ray's fixed per-call cost (no-op server) "
                    f"{fixed:,.0f} us ({fixed / total:.0%}), the nest's leaves {nest:,.0f} us, "
                    f"the replay server's own work {server:,.0f} us (differences of noisy rates)"
                )
    return "\n".join(lines)


def _verdict(report: dict[str, Any]) -> str:
    """One line: where the aim is met, and how far the runtime's batch size gets."""
    aim = report["aim_transitions_per_s"]
    rows = report["rows"]
    met = sorted({row["batch_size"] for row in rows if row["aim_met"]})
    at_runtime = [row for row in rows if row["batch_size"] == report["runtime_batch_size"]]
    runtime = [row for row in at_runtime if row["max_coalesced_items"]]
    off = [row for row in at_runtime if not row["max_coalesced_items"]]
    parts = [f"aim (>= {aim:,} transitions/s into the replay server):"]
    parts.append(f"met at batch {', '.join(map(str, met))}" if met else "not met at any batch size measured")
    if runtime:
        best = max(row["transitions_per_s"] for row in runtime)
        state = "met" if best >= aim else "NOT met"
        parts.append(f"; at the DQN adder's batch {report['runtime_batch_size']} with coalescing {state} "
                     f"(best {best:,.0f}/s, {best / aim:.0%} of the aim)")
        if off:
            best_off = max(row["transitions_per_s"] for row in off)
            parts.append(f"; coalescing off: best {best_off:,.0f}/s (coalescing gives "
                         f"{best / max(best_off, 1e-9):.1f}x)")
    if report["lost"]:
        parts.append(f"; {report['lost']} submitted items were NOT counted by the server")
    return " ".join(parts[:2]) + "".join(parts[2:])


def _int_list(text: str, option: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"{option} must be comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        parser.error(f"{option} must list positive integers, got {text!r}")
    return values


def add_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The insert benchmark's options (``prefix`` namespaces them inside another benchmark)."""
    parser.add_argument(f"--{prefix}writers", default="1,2", help="comma-separated writer actor counts, one run each")
    parser.add_argument(f"--{prefix}batch-sizes", default=None,
                        help="comma-separated transitions per insert call (default: the DQN adder's and 256)")
    parser.add_argument(f"--{prefix}seconds", type=float, default=3.0, help="seconds measured per row")
    parser.add_argument(f"--{prefix}warmup", type=float, default=1.0, help="seconds of inserting before measuring")
    parser.add_argument(f"--{prefix}max-coalesced-items", type=int, default=None,
                        help="the writers' merge limit (default: RayReplayClient's, "
                             "DEFAULT_MAX_COALESCED_ITEMS)")
    parser.add_argument(f"--{prefix}no-baseline", action="store_true",
                        help="skip the coalescing-off rows (max_coalesced_items=0) at the DQN adder's batch size")
    parser.add_argument(f"--{prefix}profile", action="store_true",
                        help="add the per-call breakdown (flat payload, no-op server, in-process costs)")


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    """Validates the options added by ``add_options`` (a usage error otherwise)
    and returns ``run``'s keyword arguments."""
    name = prefix.replace("-", "_")
    writers = _int_list(getattr(args, f"{name}writers"), f"--{prefix}writers", parser)
    sizes_text = getattr(args, f"{name}batch_sizes")
    batch_sizes = None if sizes_text is None else _int_list(sizes_text, f"--{prefix}batch-sizes", parser)
    max_size = dqn_defaults()["max_replay_size"]
    if batch_sizes is not None and max(batch_sizes) > max_size:
        parser.error(f"--{prefix}batch-sizes must not exceed DQN's max_replay_size ({max_size:,})")
    seconds, warmup = getattr(args, f"{name}seconds"), getattr(args, f"{name}warmup")
    max_coalesced_items = getattr(args, f"{name}max_coalesced_items")
    if max_coalesced_items is not None and max_coalesced_items < 1:
        parser.error(f"--{prefix}max-coalesced-items must be >= 1 (the coalescing-off rows are the baseline)")
    if seconds <= 0 or warmup < 0:
        parser.error(f"--{prefix}seconds must be > 0 and --{prefix}warmup >= 0")
    return {"writer_counts": writers, "batch_sizes": batch_sizes, "seconds": seconds, "warmup": warmup,
            "profile": getattr(args, f"{name}profile"), "max_coalesced_items": max_coalesced_items,
            "off_baseline": not getattr(args, f"{name}no_baseline")}


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, runs the measurements and prints the table."""
    parser = argparse.ArgumentParser(prog="python -m distrl.bench insert", description=__doc__.split("\n\n")[0])
    add_options(parser)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the private Ray instance (default: all)")
    args = parser.parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error("--num-cpus must be >= 1")
    start = time.perf_counter()
    options = options_from_args(args, parser)
    report = run(**options, num_cpus=args.num_cpus or os.cpu_count() or 1)
    print(format_report(report))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0 if report["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
