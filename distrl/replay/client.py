"""The ReplayClient interface, the in-process client of the debug mode, and a client that groups inserts."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from distrl.types import Nest, SampleBatch
from distrl.utils.nests import concatenate_batches, stacked_length

if TYPE_CHECKING:
    from distrl.replay.table import Table


class ReplayClient(abc.ABC):
    """Talks to one replay table, wherever it lives."""

    @abc.abstractmethod
    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        """Inserts a batch of items (every leaf has a leading batch axis)."""

    @abc.abstractmethod
    def sample(self, batch_size: int) -> SampleBatch:
        """Samples ``batch_size`` items, waiting (with a timeout) on the rate limiter."""

    @abc.abstractmethod
    def can_sample(self, batch_size: int) -> bool:
        """True when a ``sample(batch_size)`` call would not wait now."""

    @abc.abstractmethod
    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Sets new priorities for the given keys (keys already evicted are ignored)."""

    @abc.abstractmethod
    def info(self) -> Mapping[str, Any]:
        """Returns the table's counters (size, inserts, samples, ...)."""


class LocalReplayClient(ReplayClient):
    """Calls a ``Table`` in the same process: the single-process debug mode.

    Inserts never wait on the rate limiter (``block=False``): with one thread
    nobody else could ever release the wait. The caller keeps the
    samples-per-insert ratio instead by running learner steps while
    ``can_sample`` is true, and ``sample`` raises at once (TimeoutError naming
    the limiter's state) when called without that check passing. A queue
    table is the one exception to never waiting: an insert into a full queue
    raises at once rather than overwrite items nobody has read.
    """

    def __init__(self, table: "Table"):
        self._table = table

    @property
    def table(self) -> "Table":
        """The table this client calls."""
        return self._table

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        self._table.insert(items, priorities, block=False)

    def sample(self, batch_size: int) -> SampleBatch:
        return self._table.sample(batch_size, block=False)

    def can_sample(self, batch_size: int) -> bool:
        return self._table.can_sample(batch_size)

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        self._table.update_priorities(keys, priorities)

    def info(self) -> Mapping[str, Any]:
        return self._table.info()


class GroupedInsertClient(ReplayClient):
    """Forwards inserts to ``client`` in groups of at least ``items_per_insert`` items.

    The adders of one actor's environments share one, so a round of data
    (one A2C segment per environment) reaches the table in one insert call:
    the table admits it whole or not at all, so a queue always holds whole
    rounds, even when an actor dies mid-round, and one remote call carries
    what would otherwise be ``items_per_insert`` calls. Buffered items that
    do not fill a group stay buffered (at most ``items_per_insert - 1``).
    Sampling and the other calls go straight to ``client``.
    """

    def __init__(self, client: ReplayClient, items_per_insert: int) -> None:
        if items_per_insert < 1:
            raise ValueError(f"items_per_insert must be >= 1, got {items_per_insert!r}")
        self._client = client
        self._items_per_insert = int(items_per_insert)
        self._items: list[Nest] = []
        self._priorities: list[np.ndarray | None] = []
        self._buffered = 0

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        if self._priorities and (priorities is None) != (self._priorities[0] is None):
            raise ValueError("GroupedInsertClient: inserts of one group must all have priorities or all have none")
        self._items.append(items)
        self._priorities.append(priorities)
        self._buffered += stacked_length(items)
        if self._buffered >= self._items_per_insert:
            items, priorities = concatenate_batches(self._items, self._priorities)
            self._items, self._priorities, self._buffered = [], [], 0
            self._client.insert(items, priorities)

    def sample(self, batch_size: int) -> SampleBatch:
        return self._client.sample(batch_size)

    def can_sample(self, batch_size: int) -> bool:
        return self._client.can_sample(batch_size)

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        self._client.update_priorities(keys, priorities)

    def info(self) -> Mapping[str, Any]:
        return self._client.info()
