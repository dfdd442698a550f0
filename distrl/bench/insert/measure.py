"""The measurements: W writer actors inserting into a fresh server per row, the in-process rate.

``run`` validates its arguments (``check_options``, the benchmark's one set
of rules, also what the command line applies), starts or reuses Ray, runs
every row and returns the report as a dict (``distrl.bench.insert.report``
prints it).
"""

from __future__ import annotations

import functools
import pickle
import time
from typing import Any, NamedTuple, Sequence

import numpy as np
import ray

from distrl.bench.insert.actors import TABLE, InsertWriter, NoOpServer, make_tables
from distrl.bench.insert.workload import dqn_defaults, flat_payloads, make_batches
from distrl.bench.replay import fill, measure
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.ray_setup import init_ray
from distrl.replay.server import CONTROL_CONCURRENCY, DEFAULT_MAX_COALESCED_ITEMS, create_replay_server
from distrl.types import Transition

AIM_TRANSITIONS_PER_S = 100_000
"""The issue's aim for the insert path into the replay server, in transitions per second."""

_STOP_MARGIN_S = 120.0  # A writer stops by itself this long after its run should have ended.


class OptionError(ValueError):
    """A bad argument of ``run``.

    ``option`` names it as the command line spells it, without ``--`` or a
    prefix (``"writers"``, ``"batch-sizes"``, ...); ``problem`` says what is
    wrong. ``str(error)`` is ``"<option> <problem>"``.
    """

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem


def check_options(writer_counts: Sequence[int], batch_sizes: Sequence[int] | None, seconds: float,
                  warmup: float, max_coalesced_items: int | None) -> None:
    """The rules for ``run``'s arguments, in one place (the command line applies them too).

    None for ``batch_sizes`` or ``max_coalesced_items`` means the default and
    is valid. Raises ``OptionError`` (a ValueError) for the first bad one:
    writer counts not all >= 1 or none, batch sizes outside
    [1, DQN's ``max_replay_size``] or none, ``seconds`` <= 0, ``warmup`` < 0,
    ``max_coalesced_items`` < 1 (the coalescing-off rows are the baseline).
    """
    writer_counts = list(writer_counts)
    if not writer_counts or min(writer_counts) < 1:
        raise OptionError("writers", f"must list positive integers, got {writer_counts}")
    if batch_sizes is not None:
        batch_sizes, max_size = list(batch_sizes), dqn_defaults()["max_replay_size"]
        if not batch_sizes or min(batch_sizes) < 1 or max(batch_sizes) > max_size:
            raise OptionError("batch-sizes", f"must list integers in [1, {max_size:,}] "
                                             f"(DQN's max_replay_size), got {batch_sizes}")
    if seconds <= 0:
        raise OptionError("seconds", f"must be > 0, got {seconds}")
    if warmup < 0:
        raise OptionError("warmup", f"must be >= 0, got {warmup}")
    if max_coalesced_items is not None and max_coalesced_items < 1:
        raise OptionError("max-coalesced-items", "must be >= 1 (the coalescing-off rows are the baseline), "
                                                 f"got {max_coalesced_items}")


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
        """Whether the row reached ``AIM_TRANSITIONS_PER_S``."""
        return self.transitions_per_s >= AIM_TRANSITIONS_PER_S

    def as_dict(self) -> dict[str, Any]:
        """The fields plus ``ratio``, ``lost`` and ``aim_met``: one row of the report."""
        return {**self._asdict(), "ratio": self.ratio, "lost": self.lost, "aim_met": self.aim_met}


def _start_server(kind: str, num_writers: int, max_in_flight: int, max_size: int, min_size: int) -> Any:
    """A ``"replay"`` (or ``"no-op"``) server actor sized like the runtime's:
    insert threads = writers * k + 2; returns its handle."""
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


def in_process_rate(batches: Sequence[Transition], max_size: int, min_size: int, seconds: float,
                    slices: int = 5) -> float:
    """``Table.insert`` transitions/s of the benchmark's table in this process (no Ray).

    The table is filled first, so inserts include FIFO eviction as in the
    server's steady state; the rate is the median of ``slices`` wall-clock slices.
    """
    table = make_tables(max_size, min_size)[0]
    fill(table.insert, list(batches), max_size)
    batch_size = batches[0].action.shape[0]
    step = lambda i: table.insert(batches[i % len(batches)])  # noqa: E731
    rates = [measure(step, batch_size, seconds / slices, time.perf_counter) for _ in range(slices)]
    return float(np.median(rates))


def micro_costs(batch: Transition, flat: np.ndarray, max_size: int, min_size: int) -> dict[str, float | None]:
    """In-process microseconds per call of the pieces of one insert (for ``--profile``).

    Keys: ``table_insert_us``, ``pickle_dumps_us``, ``pickle_loads_us`` and
    ``ray_serialize_transition_us`` / ``ray_serialize_flat_us`` (None when
    Ray's private serializer is not reachable).
    """

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

    ``batch_sizes`` None: the DQN adder's and 256. ``seconds`` and ``warmup``
    are per row, ``baseline_seconds`` per in-process rate. Raises
    ``OptionError`` (a ValueError; see ``check_options``) before starting
    anything when an argument is out of range.
    """
    check_options(writer_counts, batch_sizes, seconds, warmup, max_coalesced_items)
    defaults = dqn_defaults()
    if max_coalesced_items is None:
        max_coalesced_items = DEFAULT_MAX_COALESCED_ITEMS
    if batch_sizes is None:
        batch_sizes = sorted({defaults["adder_batch_size"], 256})
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
