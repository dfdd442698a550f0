"""``RayReplayClient``: the ``ReplayClient`` env actors and the learner use to reach a ``ReplayServer``.

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
from typing import Any, Mapping

import numpy as np
import ray

from distrl.replay.client import ReplayClient
from distrl.replay.server import CLIENT_TIMEOUT_MARGIN_S, DEFAULT_MAX_COALESCED_ITEMS
from distrl.replay.table import DEFAULT_TIMEOUT_S
from distrl.types import Nest, SampleBatch
from distrl.utils.nests import concatenate_batches, stacked_length

class RayReplayClient(ReplayClient):
    """A ``ReplayClient`` for one table of a replay server actor.

    Inserts are asynchronous, bounded and, when the server falls behind,
    coalesced. Why: a remote call costs about 1 ms of fixed Ray overhead
    whatever its size (``python -m distrl.bench insert``), so DQN's batches of
    16 transitions cap one client near 1,000 calls/s x 16 = 16k transitions/s,
    while calls of 256 items pass the 100,000 transitions/s aim.

    * While the server keeps up (fewer than ``max_in_flight_inserts``, k,
      calls outstanding) and the last call is at least
      ``min_call_interval_s`` old, ``insert`` submits each batch at once:
      nothing is buffered and latency is as without coalescing.
    * An insert that finds k calls outstanding marks the client *behind*.
      From then on each batch is appended to a pending buffer instead, which
      goes out as ONE call (batches concatenated leaf by leaf, in order) when
      it reaches the merge limit, waiting for a free slot if k calls are
      still outstanding (that wait is the backpressure wait), or when an
      ``insert`` (or ``flush``) finds every call finished, which ends the
      behind state. A batch that cannot join the buffer (too many items, or
      priorities where the buffer has none or the reverse) sends it first.
    * With ``min_call_interval_s`` = T > 0 a batch is also held while the
      last call went out less than T ago, and goes out with the first
      ``insert`` at least T after it (or ``flush``/``send_held``). A client
      inserting B items per batch, b batches per second, then makes about
      max(1/T, b x B / merge limit) calls per second instead of b: the
      merge limit still caps a call, so a batch of the merge limit or more
      is never held. One that inserts at most once per T is not delayed.
      A held item waits for the first insert at least T after the last
      call: under 2 T while inserts come regularly more often than T,
      longer after a gap in the inserts (an environment rebuild, a slow
      step).
    * The buffer is held even while a slot is free: sending it whenever a
      call finished kept calls at ~60-80 items and DQN's batch of 16 at
      ~40-70k transitions/s, holding it gives ~220-245 items per call and
      ~140-230k/s (``distrl.bench insert`` on 2 shared cores). An item held
      while behind waits at most until the buffer fills or the outstanding
      calls finish (without coalescing the actor itself would have waited
      for them), and with T > 0 until the next call T after the last.

    Guarantees: items are submitted exactly once and in the order given (a
    merged call is one ``Table.insert``: admitted whole or not at all, its
    batches in order; as without merging, the server runs a client's
    outstanding calls on concurrent threads, so with k > 1 two calls waiting
    on the rate limiter together may land in either order); at most k calls
    are in flight and, between calls, fewer than the merge limit items are
    buffered; a call holds at most max(merge limit, one batch) items. The
    merge limit is ``max_coalesced_items`` capped by the server's
    ``coalescing_limit`` for the table (asked once, the first time the client
    would hold a batch; a server that dies meanwhile is asked again next
    time): 0 for a queue, which disables merging and holding. Errors of
    finished inserts (e.g. the server's TimeoutError) are raised by a later
    ``insert``, ``send_held`` or ``flush``; an ``insert`` that raises has not
    taken its batch (batches buffered before it stay buffered).

    A call the server dies with (``ray.exceptions.RayActorError``) is
    dropped and counted (``lost_calls``), not raised: when Ray restarts the
    server (``replay_max_restarts``) the client carries on with it, and the
    lost window is what the restored table lacks; when the server stays
    dead, the driver ends the run.

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
      min_call_interval_s: Seconds T >= 0 after a call during which a batch
        is held and merged into the next call (0: never held for time; see
        above). Holding needs merging: a client with a merge limit of 0
        never holds. Raises ValueError for T < 0.
    """

    #: Sample-call errors a ``PrefetchingIterator`` retries: the server died (Ray may restart it).
    retryable_errors = (ray.exceptions.RayActorError,)

    def __init__(
        self,
        server: "ray.actor.ActorHandle",
        table: str,
        max_in_flight_inserts: int = 4,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_coalesced_items: int = DEFAULT_MAX_COALESCED_ITEMS,
        min_call_interval_s: float = 0.0,
    ) -> None:
        if max_in_flight_inserts < 1:
            raise ValueError(f"max_in_flight_inserts must be >= 1, got {max_in_flight_inserts!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_coalesced_items < 0:
            raise ValueError(f"max_coalesced_items must be >= 0, got {max_coalesced_items!r}")
        if not min_call_interval_s >= 0:
            raise ValueError(f"min_call_interval_s must be >= 0 seconds, got {min_call_interval_s!r}")
        self._server = server
        self._table = table
        self._max_in_flight = int(max_in_flight_inserts)
        self._timeout = float(timeout)
        self._max_coalesced = int(max_coalesced_items)
        self._min_call_interval_s = float(min_call_interval_s)
        self._last_call = -math.inf  # time.monotonic() of the last insert call.
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
        self._lost_calls = 0

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
        ``max_in_flight_seen`` (never above k), ``lost_calls`` (inserts and
        priority updates the server died with).
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
            "lost_calls": float(self._lost_calls),
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
            self._settle(pending.popleft())

    def _settle(self, future: concurrent.futures.Future, timeout: float | None = None) -> None:
        """The result of a finished (or, with ``timeout``, finishing) call; a call the server
        died with is counted in ``lost_calls`` instead of raised."""
        try:
            future.result(timeout=timeout)
        except ray.exceptions.RayActorError:
            self._lost_calls += 1

    def _wait_oldest(self, pending: collections.deque, what: str) -> None:
        """Blocks until the oldest call in ``pending`` finished; raises its error,
        or TimeoutError when it has not finished within the reply timeout."""
        oldest = pending[0]
        try:
            self._settle(oldest, self._reply_timeout())
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
            try:
                server_limit = int(self.get(self._server.coalescing_limit.remote(self._table)))
            except ray.exceptions.RayActorError:
                return 0  # The server died (Ray may restart it): no merging until it answers.
            self._merge_limit = min(self._max_coalesced, server_limit)
        return self._merge_limit

    def _submit(self, items: Nest, priorities: np.ndarray | None, num_items: int) -> None:
        """Submits one insert call; the caller made sure a slot is free."""
        pending = self._inserts
        pending.append(self._server.insert.remote(self._table, items, priorities, self._timeout).future())
        self._last_call = time.monotonic()
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
        hold = self._behind or time.monotonic() - self._last_call < self._min_call_interval_s
        if hold and self._buffered + num_items < self._coalescing_limit():
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

    def send_held(self) -> None:
        """Submits the held batches now if fewer than k calls are outstanding, else keeps them;
        never waits (for an actor about to idle, whose held items would otherwise wait for its
        next insert). Raises the error of a finished insert, as ``insert`` does."""
        self._reap(self._inserts)
        if self._buffer and len(self._inserts) < self._max_in_flight:
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
