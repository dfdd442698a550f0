"""The ReplayClient interface and the in-process client used by the debug mode."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

import numpy as np

from distrl.types import Nest

if TYPE_CHECKING:
    from distrl.replay.table import Table


class SampleBatch(NamedTuple):
    """A sampled batch: replay keys, stacked data, sampling probabilities and
    importance weights (all ones for uniform sampling)."""

    keys: np.ndarray
    data: Nest
    probabilities: np.ndarray
    weights: np.ndarray


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
