"""What runs in the benchmark's Ray actor processes: the writer, the no-op server, the table.

Ray imports this module (by reference) in every writer and server process,
so it imports neither torch nor gymnasium: only the replay package, which a
replay server imports anyway. The DQN batches the writers send are built in
the driver (``distrl.bench.insert.workload``) and passed in.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from distrl.replay import MinSize, Table, UniformSampler
from distrl.replay.ray_client import RayReplayClient
from distrl.utils.nests import stacked_length

TABLE = "transitions"
"""The name of the benchmark's one replay table."""


def make_tables(max_size: int, min_size: int) -> list[Table]:
    """DQN's table shape with a ``MinSize`` limiter: inserts never wait, nothing samples.

    One uniform-sampler table named ``TABLE`` of ``max_size`` items whose
    limiter only asks for ``min_size`` items before sampling.
    """
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
        """Counts the leading dimension of ``items`` (a stacked nest) and returns it."""
        num_items = stacked_length(items)
        with self._lock:
            self._inserts += num_items
        return num_items

    def info(self, table: str | None = None) -> dict[str, Any]:
        """``{"inserts": items counted so far}``, the one field of ``ReplayServer.info`` the benchmark reads."""
        with self._lock:
            return {"inserts": self._inserts}

    def coalescing_limit(self, table: str) -> int:
        """No table to protect: the client's own ``max_coalesced_items`` applies."""
        return 2**31 - 1


class InsertWriter:
    """The body of a writer actor: inserts its payloads in a loop through a ``RayReplayClient``.

    ``run`` and ``stop`` are called concurrently (the actor has two threads).
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._client: RayReplayClient | None = None
        self._payloads: list = []

    def setup(self, server: Any, table: str, payloads: list, max_in_flight: int,
              max_coalesced_items: int) -> None:
        """Points the writer at a server and gives it the payloads to cycle through.

        ``max_in_flight`` and ``max_coalesced_items`` are the client's
        ``max_in_flight_inserts`` and merge limit (0: one call per payload).
        """
        self._client = RayReplayClient(server, table, max_in_flight_inserts=max_in_flight,
                                       max_coalesced_items=max_coalesced_items)
        self._payloads = list(payloads)
        self._stop.clear()

    def run(self, max_seconds: float) -> dict[str, float]:
        """Inserts until ``stop`` (or ``max_seconds``), then waits for every
        outstanding insert; returns the client's counters (``RayReplayClient.stats``)
        and the run's wall-clock length in seconds as ``run_s``."""
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
        """Makes a concurrent ``run`` stop inserting (it still waits for its outstanding calls)."""
        self._stop.set()
