"""Replay on Ray: a server actor hosting the tables, and the client actors use.

``ReplayServer`` is a plain class; ``create_replay_server`` turns it into a
threaded Ray actor with three concurrency groups, each with its own threads:

* ``insert``: inserts, which may wait on the rate limiter until the learner
  has sampled enough;
* ``sample``: samples, which may wait until the actors have inserted enough;
* the default group: ``info``, ``can_sample``, ``update_priorities``,
  ``get_state`` / ``set_state``, which never wait on the limiter.

So a sample blocked on the limiter never holds a thread an insert needs (and
the reverse), and counters stay readable while both sides wait. Every wait
has a timeout (``Table``'s TimeoutError names the table and the limiter's
state), and every client-side wait on a remote call has a timeout a little
longer than the server's, so the server's clearer error arrives first.

``RayReplayClient`` implements ``ReplayClient`` over a server handle with
bounded asynchronous inserts: at most ``max_in_flight_inserts`` insert calls
are outstanding per client; a further insert first waits for the oldest one
(backpressure), so a fast actor cannot fill the object store or the server's
queue. The time spent waiting there is the actor's backpressure wait.

This module imports ray; the single-process mode never imports it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import ray

from distrl.replay.client import ReplayClient, SampleBatch
from distrl.replay.rate_limiters import Queue
from distrl.replay.table import DEFAULT_TIMEOUT_S, Table
from distrl.types import Nest

#: Extra seconds a client waits on a remote call beyond the server-side
#: timeout, so that the server's TimeoutError (which names the limiter state)
#: reaches the caller before the client's own, vaguer one.
CLIENT_TIMEOUT_MARGIN_S = 30.0

#: Threads of the server's default concurrency group (info, priorities, state).
CONTROL_CONCURRENCY = 8


class ReplayServer:
    """Hosts replay tables by name; the body of the replay server actor.

    Args:
      make_tables: Zero-argument callable returning the tables, e.g.
        ``functools.partial(builder.make_replay_tables, spec, seed)``. Tables
        hold locks and cannot be pickled, so they are built in the actor.
    """

    def __init__(self, make_tables: Callable[[], Sequence[Table]]) -> None:
        tables = list(make_tables())
        if not tables:
            raise ValueError("ReplayServer needs at least one table")
        names = [table.name for table in tables]
        if len(set(names)) != len(names):
            raise ValueError(f"ReplayServer: table names must be unique, got {names}")
        self._tables = {table.name: table for table in tables}
        self._first = names[0]

    def _table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"replay server has no table {name!r}; it has {sorted(self._tables)}") from None

    def table_names(self) -> list[str]:
        """Names of the hosted tables; the first feeds the learner."""
        return list(self._tables)

    def is_queue(self, table: str) -> bool:
        """True when ``table`` is a FIFO queue (each item sampled once, whole
        batches only), so a sampler must not ask for more than one batch."""
        return isinstance(self._table(table).rate_limiter, Queue)

    @ray.method(concurrency_group="insert")
    def insert(
        self, table: str, items: Nest, priorities: np.ndarray | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> int:
        """Inserts a batch, waiting up to ``timeout`` seconds on the rate limiter;
        returns the number of items inserted."""
        keys = self._table(table).insert(items, priorities, timeout=timeout)
        return int(keys.shape[0])

    @ray.method(concurrency_group="sample")
    def sample(self, table: str, batch_size: int, timeout: float = DEFAULT_TIMEOUT_S) -> SampleBatch:
        """Samples a batch, waiting up to ``timeout`` seconds on the rate limiter."""
        return self._table(table).sample(batch_size, timeout=timeout)

    def can_sample(self, table: str, batch_size: int) -> bool:
        """True when a sample of ``batch_size`` would not wait now."""
        return self._table(table).can_sample(batch_size)

    def update_priorities(self, table: str, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Sets priorities; keys of items already evicted are ignored."""
        self._table(table).update_priorities(keys, priorities)

    def info(self, table: str | None = None) -> dict[str, Any]:
        """``Table.info()`` of one table, or ``{name: info}`` of all when ``table`` is None.

        Per table: size, inserts, samples, evictions, removals, observed
        ``samples_per_insert`` and ``insert_wait_s`` / ``sample_wait_s``
        (total seconds calls spent blocked on the rate limiter).
        """
        if table is not None:
            return self._table(table).info()
        return {name: t.info() for name, t in self._tables.items()}

    def get_state(self) -> dict[str, Any]:
        """``{name: Table.get_state()}`` for every table (for checkpoints)."""
        return {name: t.get_state() for name, t in self._tables.items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores ``get_state`` output; the table names must match."""
        if set(state) != set(self._tables):
            raise ValueError(f"replay state has tables {sorted(state)}, this server has {sorted(self._tables)}")
        for name, table_state in state.items():
            self._tables[name].set_state(table_state)


def create_replay_server(
    make_tables: Callable[[], Sequence[Table]],
    insert_concurrency: int = 16,
    sample_concurrency: int = 8,
    name: str | None = None,
    max_restarts: int = 0,
    num_cpus: float = 0,
) -> "ray.actor.ActorHandle":
    """Starts a ``ReplayServer`` actor and returns its handle.

    Args:
      make_tables: See ``ReplayServer``.
      insert_concurrency: Threads for inserts; at least the number of insert
        calls that can wait on the limiter at once (writers times their
        ``max_in_flight_inserts``), else later inserts queue behind them.
      sample_concurrency: Threads for samples (the learner's in-flight samples).
      name: Optional Ray actor name.
      max_restarts: Ray restarts after a crash (0: none; a restarted server
        starts empty).
      num_cpus: CPUs reserved for scheduling; 0 because the server mostly waits.
    """
    if insert_concurrency < 1 or sample_concurrency < 1:
        raise ValueError(
            f"insert_concurrency ({insert_concurrency}) and sample_concurrency ({sample_concurrency}) must be >= 1"
        )
    actor_class = ray.remote(
        concurrency_groups={"insert": int(insert_concurrency), "sample": int(sample_concurrency)}
    )(ReplayServer)
    options: dict[str, Any] = {
        "max_concurrency": CONTROL_CONCURRENCY,
        "max_restarts": max_restarts,
        "num_cpus": num_cpus,
    }
    if name is not None:
        options["name"] = name
    return actor_class.options(**options).remote(make_tables)


class RayReplayClient(ReplayClient):
    """A ``ReplayClient`` for one table of a replay server actor.

    ``insert`` returns as soon as the call is submitted while fewer than
    ``max_in_flight_inserts`` of this client's inserts are outstanding;
    otherwise it first waits for the oldest to finish (backpressure). Errors
    of finished inserts (e.g. the server's TimeoutError) are raised by a later
    ``insert`` or ``flush``. ``update_priorities`` does not wait either,
    bounded the same way. ``sample``, ``can_sample`` and ``info`` are
    blocking remote calls.

    Args:
      server: Handle of a ``ReplayServer`` actor.
      table: Name of the table this client talks to.
      max_in_flight_inserts: Outstanding insert calls allowed, k >= 1.
      timeout: Seconds a server-side call may wait on the rate limiter; the
        client waits that plus ``CLIENT_TIMEOUT_MARGIN_S`` for any reply.
    """

    def __init__(
        self,
        server: "ray.actor.ActorHandle",
        table: str,
        max_in_flight_inserts: int = 4,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if max_in_flight_inserts < 1:
            raise ValueError(f"max_in_flight_inserts must be >= 1, got {max_in_flight_inserts!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._server = server
        self._table = table
        self._max_in_flight = int(max_in_flight_inserts)
        self._timeout = float(timeout)
        self._inserts: collections.deque = collections.deque()
        self._priority_updates: collections.deque = collections.deque()
        self._insert_wait_s = 0.0
        self._insert_calls = 0
        self._items_inserted = 0
        self._max_in_flight_seen = 0

    @property
    def table(self) -> str:
        """Name of the table this client talks to."""
        return self._table

    @property
    def max_in_flight_inserts(self) -> int:
        """The backpressure bound k."""
        return self._max_in_flight

    @property
    def in_flight_inserts(self) -> int:
        """Insert calls submitted and not yet seen finished."""
        return len(self._inserts)

    def stats(self) -> dict[str, float]:
        """Client-side counters: ``insert_calls``, ``items_inserted`` (submitted),
        ``insert_wait_s`` (seconds spent blocked by backpressure),
        ``in_flight_inserts`` now and ``max_in_flight_seen`` (never above k)."""
        return {
            "insert_calls": float(self._insert_calls),
            "items_inserted": float(self._items_inserted),
            "insert_wait_s": self._insert_wait_s,
            "in_flight_inserts": float(len(self._inserts)),
            "max_in_flight_seen": float(self._max_in_flight_seen),
        }

    def _reply_timeout(self) -> float:
        return self._timeout + CLIENT_TIMEOUT_MARGIN_S

    def _reap(self, pending: collections.deque) -> None:
        """Drops finished calls from the front of ``pending``, raising their errors.

        Each pending entry is an ObjectRef's ``Future``: ``done()`` is a plain
        Python check, whereas ``ray.wait(timeout=0)`` costs a round trip to the
        raylet (about a millisecond on a busy machine), once per insert.
        """
        while pending and pending[0].done():
            pending.popleft().result()

    def _wait_oldest(self, pending: collections.deque, what: str) -> None:
        """Blocks until the oldest call in ``pending`` finished; raises its error,
        or TimeoutError when it has not finished within the reply timeout."""
        oldest = pending[0]
        try:
            oldest.result(timeout=self._reply_timeout())
        except concurrent.futures.TimeoutError:
            if oldest.done():  # The call itself failed with a TimeoutError (e.g. the rate limiter's).
                pending.popleft()
                raise
            raise TimeoutError(
                f"replay client for table {self._table!r}: the oldest of {len(pending)} outstanding {what} "
                f"calls did not finish within {self._reply_timeout():g} s; the replay server is overloaded, "
                f"stalled or dead"
            ) from None
        except Exception:
            pending.popleft()
            raise
        pending.popleft()

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        """Submits one insert of a stacked batch; waits only while k are outstanding."""
        pending = self._inserts
        self._reap(pending)
        if len(pending) >= self._max_in_flight:
            start = time.perf_counter()
            try:
                while len(pending) >= self._max_in_flight:
                    self._wait_oldest(pending, "insert")
            finally:
                self._insert_wait_s += time.perf_counter() - start
        pending.append(self._server.insert.remote(self._table, items, priorities, self._timeout).future())
        self._insert_calls += 1
        self._items_inserted += len(priorities) if priorities is not None else _batch_size(items)
        self._max_in_flight_seen = max(self._max_in_flight_seen, len(pending))

    def flush(self) -> None:
        """Waits until every outstanding insert and priority update has finished."""
        while self._inserts:
            self._wait_oldest(self._inserts, "insert")
        while self._priority_updates:
            self._wait_oldest(self._priority_updates, "update_priorities")

    def sample(self, batch_size: int) -> SampleBatch:
        """Samples a batch (waits on the rate limiter on the server, with the timeout)."""
        return self.get(self.sample_async(batch_size))

    def sample_async(self, batch_size: int) -> "ray.ObjectRef":
        """Submits a sample call and returns its ObjectRef (for prefetching)."""
        return self._server.sample.remote(self._table, batch_size, self._timeout)

    def get(self, ref: "ray.ObjectRef") -> Any:
        """``ray.get`` with the client's reply timeout and an error naming the table."""
        try:
            return ray.get(ref, timeout=self._reply_timeout())
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(
                f"replay client for table {self._table!r}: no reply within {self._reply_timeout():g} s"
            ) from None

    def can_sample(self, batch_size: int) -> bool:
        return self.get(self._server.can_sample.remote(self._table, batch_size))

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Submits new priorities without waiting (at most k calls outstanding)."""
        pending = self._priority_updates
        self._reap(pending)
        while len(pending) >= self._max_in_flight:
            self._wait_oldest(pending, "update_priorities")
        pending.append(self._server.update_priorities.remote(self._table, keys, priorities).future())

    def info(self) -> Mapping[str, Any]:
        return self.get(self._server.info.remote(self._table))


def _batch_size(items: Nest) -> int:
    """Leading-axis length of the first leaf of a stacked batch."""
    leaf = items
    while not hasattr(leaf, "shape"):
        if isinstance(leaf, Mapping):
            leaf = leaf[sorted(leaf)[0]]
        else:
            leaf = leaf[0]
    return int(leaf.shape[0])
