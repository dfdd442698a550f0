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
are outstanding per client, so a fast actor cannot fill the object store or
the server's queue. Once an insert finds that many outstanding, further
batches are merged client-side into bigger calls (up to
``max_coalesced_items``) until the server has finished every call; an insert
waits for the oldest call only when the merged buffer is full (backpressure;
the time spent there is the actor's backpressure wait). Merging pays because
a remote call costs about a millisecond of fixed Ray overhead whatever its
size (``python -m distrl.bench insert``), so throughput grows with items per
call.
The server caps merging per table (``ReplayServer.coalescing_limit``): never
into a queue, and no more than a ratio limiter's window was sized for.

This module imports ray; the single-process mode never imports it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import ray

from distrl.replay.client import ReplayClient
from distrl.replay.rate_limiters import Queue
from distrl.replay.table import DEFAULT_TIMEOUT_S, Table
from distrl.types import Nest, SampleBatch
from distrl.utils.nests import concatenate_batches, stacked_length

#: Extra seconds a client waits on a remote call beyond the server-side
#: timeout, so that the server's TimeoutError (which names the limiter state)
#: reaches the caller before the client's own, vaguer one.
CLIENT_TIMEOUT_MARGIN_S = 30.0

#: Threads of the server's default concurrency group (info, priorities, state).
CONTROL_CONCURRENCY = 8

#: Default cap on the items one merged insert call carries. ``distrl.bench
#: insert`` measured about 1 ms of fixed Ray cost per remote call on a small
#: machine: DQN's 16-transition batches then reach ~15k transitions/s, calls
#: of 128 ~146k/s and calls of 256 ~226k/s. 256 clears the 100k/s aim with
#: margin; a merged call of 256 DQN CartPole transitions is about 14 KB. The
#: server lowers it per table (``ReplayServer.coalescing_limit``): to 50 for
#: DQN's and DDPG's default ratio limiters, to 0 (no merging) for A2C's queue.
DEFAULT_MAX_COALESCED_ITEMS = 256


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

    def coalescing_limit(self, table: str) -> int:
        """The most items a client may merge from several batches into one insert call.

        Merging keeps each call all-or-nothing, but a bigger call must not
        weaken what the table guarantees:

        * a queue: 0 (no merging). A queue admits whole calls only and is
          deadlock-free when producer call + consumer batch <= max_size + 1,
          which holds for one round (A2C sizes the queue so) but not for two;
        * a ratio limiter: a call of n items is admitted when its first item
          is, so it may overshoot the window by (n - 1) * samples_per_insert;
          n is capped at error_buffer / (2 * samples_per_insert), the insert
          batch ``SampleToInsertRatio.with_tolerance`` sizes the window for;
        * otherwise (``MinSize``: inserts never wait) the table's max_size.
        """
        t = self._table(table)
        limiter = t.rate_limiter
        if isinstance(limiter, Queue):
            return 0
        limit = t.max_size
        width = limiter.max_diff - limiter.min_diff  # 2 * error_buffer for SampleToInsertRatio.
        if limiter.samples_per_insert > 0 and math.isfinite(width):
            limit = min(limit, int(width / (4 * limiter.samples_per_insert)))
        return max(limit, 0)

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

    def cancel_sample_waits(self, table: str) -> None:
        """Ends the sample calls now waiting on ``table``'s limiter: a restarted
        learner's predecessor left them, and no one would receive their data."""
        self._table(table).cancel_sample_waits()

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

    Inserts are asynchronous, bounded and, when the server falls behind,
    coalesced. Why: a remote call costs about 1 ms of fixed Ray overhead
    whatever its size (``python -m distrl.bench insert``), so DQN's batches of
    16 transitions cap one client near 1,000 calls/s x 16 = 16k transitions/s,
    while calls of 256 items pass the 100,000 transitions/s aim.

    * While the server keeps up, ``insert`` submits each batch at once (fewer
      than ``max_in_flight_inserts``, k, calls outstanding): nothing is
      buffered and latency is as without coalescing.
    * An insert that finds k calls outstanding marks the client *behind*.
      From then on each batch is appended to a pending buffer instead, which
      goes out as ONE call (batches concatenated leaf by leaf, in order) when
      it reaches the merge limit, waiting for a free slot if k calls are
      still outstanding (that wait is the backpressure wait), or when an
      ``insert`` (or ``flush``) finds every call finished, which ends the
      behind state. A batch that cannot join the buffer (too many items, or
      priorities where the buffer has none or the reverse) sends it first.
    * The buffer is held even while a slot is free: sending it whenever a
      call finished kept calls at ~60-80 items and DQN's batch of 16 at
      ~40-70k transitions/s, holding it gives ~220-245 items per call and
      ~140-230k/s (``distrl.bench insert`` on 2 shared cores). A held item
      waits at most until the buffer fills or the outstanding calls finish
      (without coalescing the actor itself would have waited for them).

    Guarantees: items are submitted exactly once and in the order given (a
    merged call is one ``Table.insert``: admitted whole or not at all, its
    batches in order; as without merging, the server runs a client's
    outstanding calls on concurrent threads, so with k > 1 two calls waiting
    on the rate limiter together may land in either order); at most k calls
    are in flight and, between calls, fewer than the merge limit items are
    buffered; a call holds at most max(merge limit, one batch) items. The
    merge limit is ``max_coalesced_items`` capped by the server's
    ``coalescing_limit`` for the table (asked once, the first time k calls
    are outstanding): 0 for a queue, which disables merging. Errors of
    finished inserts (e.g. the server's TimeoutError) are raised by a later
    ``insert`` or ``flush``; an ``insert`` that raises has not taken its batch
    (batches buffered before it stay buffered).

    ``update_priorities`` does not wait either, bounded by k the same way
    (never merged). ``sample``, ``can_sample`` and ``info`` are blocking
    remote calls.

    Args:
      server: Handle of a ``ReplayServer`` actor.
      table: Name of the table this client talks to.
      max_in_flight_inserts: Outstanding insert calls allowed, k >= 1.
      timeout: Seconds a server-side call may wait on the rate limiter; the
        client waits that plus ``CLIENT_TIMEOUT_MARGIN_S`` for any reply.
      max_coalesced_items: Most items merged into one insert call while the
        client is behind; 0 never merges (every batch is its own call and an
        insert finding k outstanding waits for the oldest, as without
        coalescing).
    """

    def __init__(
        self,
        server: "ray.actor.ActorHandle",
        table: str,
        max_in_flight_inserts: int = 4,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_coalesced_items: int = DEFAULT_MAX_COALESCED_ITEMS,
    ) -> None:
        if max_in_flight_inserts < 1:
            raise ValueError(f"max_in_flight_inserts must be >= 1, got {max_in_flight_inserts!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_coalesced_items < 0:
            raise ValueError(f"max_coalesced_items must be >= 0, got {max_coalesced_items!r}")
        self._server = server
        self._table = table
        self._max_in_flight = int(max_in_flight_inserts)
        self._timeout = float(timeout)
        self._max_coalesced = int(max_coalesced_items)
        # The merge limit: min(max_coalesced_items, the server's coalescing_limit), asked lazily.
        self._merge_limit: int | None = None if self._max_coalesced > 0 else 0
        self._inserts: collections.deque = collections.deque()
        self._priority_updates: collections.deque = collections.deque()
        # Batches waiting to go out as one call, their priorities and item count.
        self._buffer: list[Nest] = []
        self._buffer_priorities: list[np.ndarray | None] = []
        self._buffered = 0
        # Behind: set when an insert finds k calls outstanding, cleared when it finds none.
        self._behind = False
        self._insert_wait_s = 0.0
        self._insert_calls = 0
        self._items_inserted = 0
        self._coalesced_calls = 0
        self._coalesced_batches = 0
        self._max_call_items = 0
        self._max_buffered_seen = 0
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
    def max_coalesced_items(self) -> int:
        """The ``max_coalesced_items`` asked for (the server may lower the merge limit)."""
        return self._max_coalesced

    @property
    def in_flight_inserts(self) -> int:
        """Insert calls submitted and not yet seen finished."""
        return len(self._inserts)

    @property
    def buffered_items(self) -> int:
        """Items accepted by ``insert`` and not yet submitted (waiting to be merged)."""
        return self._buffered

    def stats(self) -> dict[str, float]:
        """Client-side counters.

        ``insert_calls`` (remote calls submitted), ``items_inserted`` (items
        accepted by ``insert``: submitted or still buffered),
        ``items_buffered`` (buffered now; submitted = items_inserted minus
        it), ``coalesced_calls`` (calls that merged several batches) and
        ``coalesced_batches`` (batches they carried), ``max_call_items``,
        ``max_buffered_seen`` (items left buffered after an insert), the merge
        ``coalescing_limit`` (-1 while not yet asked), ``insert_wait_s``
        (seconds blocked by backpressure), ``in_flight_inserts`` now and
        ``max_in_flight_seen`` (never above k).
        """
        return {
            "insert_calls": float(self._insert_calls),
            "items_inserted": float(self._items_inserted),
            "items_buffered": float(self._buffered),
            "coalesced_calls": float(self._coalesced_calls),
            "coalesced_batches": float(self._coalesced_batches),
            "max_call_items": float(self._max_call_items),
            "max_buffered_seen": float(self._max_buffered_seen),
            "coalescing_limit": float(-1 if self._merge_limit is None else self._merge_limit),
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

    def _await_insert_slot(self) -> None:
        """Waits (backpressure, timed) until fewer than k insert calls are outstanding."""
        pending = self._inserts
        if len(pending) < self._max_in_flight:
            return
        start = time.perf_counter()
        try:
            while len(pending) >= self._max_in_flight:
                self._wait_oldest(pending, "insert")
        finally:
            self._insert_wait_s += time.perf_counter() - start

    def _coalescing_limit(self) -> int:
        """The merge limit: ``max_coalesced_items`` capped by the server's
        ``coalescing_limit`` for the table (one blocking call, the first time)."""
        if self._merge_limit is None:
            server_limit = int(self.get(self._server.coalescing_limit.remote(self._table)))
            self._merge_limit = min(self._max_coalesced, server_limit)
        return self._merge_limit

    def _submit(self, items: Nest, priorities: np.ndarray | None, num_items: int) -> None:
        """Submits one insert call; the caller made sure a slot is free."""
        pending = self._inserts
        pending.append(self._server.insert.remote(self._table, items, priorities, self._timeout).future())
        self._insert_calls += 1
        self._max_call_items = max(self._max_call_items, num_items)
        self._max_in_flight_seen = max(self._max_in_flight_seen, len(pending))

    def _send_buffer(self) -> None:
        """Submits the buffered batches as one call (concatenated leaf by leaf,
        in order), first waiting for a free slot when k calls are outstanding."""
        self._await_insert_slot()
        batches, priorities, num_items = self._buffer, self._buffer_priorities, self._buffered
        self._buffer, self._buffer_priorities, self._buffered = [], [], 0
        items, merged_priorities = concatenate_batches(batches, priorities)
        if len(batches) > 1:
            self._coalesced_calls += 1
            self._coalesced_batches += len(batches)
        self._submit(items, merged_priorities, num_items)

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        """Inserts a stacked batch: submits it at once, or, while the client is
        behind, merges it into the pending buffer (see the class docstring)."""
        num_items = len(priorities) if priorities is not None else stacked_length(items)
        pending = self._inserts
        self._reap(pending)
        if not pending:
            self._behind = False  # The server finished every call: it keeps up again.
        elif len(pending) >= self._max_in_flight and not self._behind:
            self._behind = self._coalescing_limit() > 0
        if self._buffer and (
            (priorities is None) != (self._buffer_priorities[0] is None)
            or self._buffered + num_items > self._coalescing_limit()
        ):
            self._send_buffer()  # The batch cannot join the buffer: the buffer goes first, alone.
        if self._behind and self._buffered + num_items < self._coalescing_limit():
            self._buffer.append(items)  # Hold the batch for a bigger call.
            self._buffer_priorities.append(priorities)
            self._buffered += num_items
            self._items_inserted += num_items
            self._max_buffered_seen = max(self._max_buffered_seen, self._buffered)
            return
        self._await_insert_slot()  # Before taking the batch: an insert that raises has not taken it.
        self._buffer.append(items)  # The buffer (if any) and this batch go out as one call.
        self._buffer_priorities.append(priorities)
        self._buffered += num_items
        self._items_inserted += num_items
        self._send_buffer()

    def flush(self) -> None:
        """Submits the buffered batches, then waits until every outstanding
        insert and priority update has finished."""
        if self._buffer:
            self._send_buffer()
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
