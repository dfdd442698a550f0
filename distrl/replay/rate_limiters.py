"""Rate limiters: when a table lets inserts and samples proceed (Reverb semantics).

A limiter keeps three counters, ``inserts``, ``samples`` and ``deletes``
(items evicted or removed; ``size = inserts - deletes``), and with them the
quantity d = inserts * samples_per_insert - samples. For one item:

* an insert may proceed while the table is below ``min_size_to_sample`` after
  it (``size + 1 <= min_size_to_sample``), or else while
  (inserts + 1) * samples_per_insert - samples <= max_diff;
* a sample may proceed when ``size >= min_size_to_sample`` and
  inserts * samples_per_insert - (samples + 1) >= min_diff.

Batch admission. A batch of n inserts (or B samples) is admitted as soon as
its first item would be, and then counts as n inserts (B samples). So d can
overshoot the window by less than one batch: it stays <= max_diff + (n-1) * spi,
and, once sampling has started, >= min_diff - (B - 1). In exchange, any batch
sizes are deadlock-free given the constructor's check (window at least
2 * max(1, spi) wide, as in Reverb): if inserts are blocked, then
size >= min_size_to_sample and d > max_diff - spi >= min_diff + 1, so a sample
may proceed; if samples are blocked, either size < min_size_to_sample, so an
insert may proceed, or d < min_diff + 1 <= max_diff - spi, so again an insert
may proceed. Admitting only whole batches would need a window wider than the
two batch sizes together, which the limiter cannot check when it is built.
``Queue`` is the exception: it must never drop or repeat an item, so it
admits only batches that fit whole (see its docstring).

Thread safety: all state is guarded by one re-entrant lock and one
``threading.Condition`` on it. A table holds ``lock`` across
``await_can_insert`` and the matching ``insert`` (likewise for samples) so
that nothing slips in between; waiting on the condition releases the lock,
however often it is held, so other threads make progress meanwhile.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, ClassVar, Mapping


class SampleWaitCancelled(Exception):
    """A sample wait ended by ``RateLimiter.cancel_sample_waits``."""


class RateLimiter:
    """Keeps inserts * samples_per_insert - samples inside [min_diff, max_diff].

    Use ``MinSize``, ``SampleToInsertRatio`` or ``Queue``, which choose the
    window; the constructor is public for tests and custom windows.

    Args:
      samples_per_insert: Samples allowed per inserted item on average.
      min_size_to_sample: Items the table must hold before any sample, >= 1.
      min_diff: Lower end of the window (samples wait below it).
      max_diff: Upper end of the window (inserts wait above it).
    """

    strict_inserts: ClassVar[bool] = False
    """True when an insert past the limit would lose data, so that even a
    non-blocking insert must be admitted (a queue); False when the limit only
    paces the caller, so a non-blocking insert may go past it."""

    def __init__(self, samples_per_insert: float, min_size_to_sample: int, min_diff: float, max_diff: float):
        if min_size_to_sample < 1:
            raise ValueError(f"min_size_to_sample ({min_size_to_sample}) must be a positive integer")
        if samples_per_insert <= 0:
            raise ValueError(f"samples_per_insert ({samples_per_insert}) must be > 0")
        self.samples_per_insert = float(samples_per_insert)
        self.min_size_to_sample = int(min_size_to_sample)
        self.min_diff = float(min_diff)
        self.max_diff = float(max_diff)
        self._lock = threading.RLock()
        self._condition = threading.Condition(self._lock)
        self._inserts = 0
        self._samples = 0
        self._deletes = 0
        self._insert_wait_s = 0.0
        self._sample_wait_s = 0.0
        self._waiting = 0
        self._sample_waits_cancelled = 0  # Generation: waits begun before a cancel end with SampleWaitCancelled.

    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock guarding the counters (and, shared, a table's state)."""
        return self._lock

    @property
    def inserts(self) -> int:
        """Items inserted so far."""
        return self._inserts

    @property
    def samples(self) -> int:
        """Items sampled so far (a batch of B counts B)."""
        return self._samples

    @property
    def deletes(self) -> int:
        """Items evicted or removed so far."""
        return self._deletes

    @property
    def size(self) -> int:
        """Items in the table: inserts - deletes."""
        return self._inserts - self._deletes

    @property
    def insert_wait_s(self) -> float:
        """Total seconds insert calls have spent blocked."""
        return self._insert_wait_s

    @property
    def sample_wait_s(self) -> float:
        """Total seconds sample calls have spent blocked."""
        return self._sample_wait_s

    @property
    def diff(self) -> float:
        """inserts * samples_per_insert - samples: the quantity kept in the window."""
        return self._inserts * self.samples_per_insert - self._samples

    def can_insert(self, num_items: int) -> bool:
        """True when a batch of ``num_items`` inserts would be admitted now."""
        with self._lock:
            if self._inserts - self._deletes + 1 <= self.min_size_to_sample:
                return True
            return (self._inserts + 1) * self.samples_per_insert - self._samples <= self.max_diff

    def can_sample(self, num_items: int) -> bool:
        """True when a batch of ``num_items`` samples would be admitted now."""
        with self._lock:
            if self._inserts - self._deletes < self.min_size_to_sample:
                return False
            return self._inserts * self.samples_per_insert - self._samples - 1 >= self.min_diff

    def _check_batch(self, num_items: int) -> None:
        """Raises when a batch can never be admitted; any size can here."""

    def await_can_insert(self, num_items: int, timeout: float, waiter: str = "caller") -> None:
        """Waits until ``can_insert(num_items)``; the caller then calls ``insert``.

        Args:
          num_items: Size of the batch to insert.
          timeout: Seconds to wait at most; 0 checks without waiting.
          waiter: Who waits, for the error message (e.g. the table name).
        Raises:
          TimeoutError: when the insert is still not allowed at the deadline.
        """
        if not self.can_insert(num_items):
            self._await(num_items, timeout, waiter, inserting=True)

    def await_can_sample(self, num_items: int, timeout: float, waiter: str = "caller") -> None:
        """Waits until ``can_sample(num_items)``; the caller then calls ``sample``.

        Raises:
          TimeoutError: when the sample is still not allowed at the deadline.
        """
        if not self.can_sample(num_items):
            self._await(num_items, timeout, waiter, inserting=False)

    def _await(self, num_items: int, timeout: float, waiter: str, inserting: bool) -> None:
        """The slow path of the awaits: re-checks under the lock, then waits."""
        allowed = self.can_insert if inserting else self.can_sample
        verb = "inserted" if inserting else "sampled"
        with self._lock:
            if allowed(num_items):
                return
            self._check_batch(num_items)
            if timeout <= 0:
                raise TimeoutError(
                    f"{waiter}: {num_items} item(s) may not be {verb} now and the call does not "
                    f"wait; {self.describe()}"
                )
            start = time.monotonic()
            deadline = start + timeout
            generation = self._sample_waits_cancelled
            self._waiting += 1
            try:
                while not allowed(num_items):
                    if not inserting and self._sample_waits_cancelled != generation:
                        raise SampleWaitCancelled(
                            f"{waiter}: a wait to sample {num_items} item(s) was cancelled "
                            f"(its caller was replaced); {self.describe()}"
                        )
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(
                            f"{waiter}: timed out after {timeout:g} s waiting until {num_items} "
                            f"item(s) may be {verb}; {self.describe()}"
                        )
                    self._condition.wait(remaining)
            finally:
                self._waiting -= 1
                waited = time.monotonic() - start
                if inserting:
                    self._insert_wait_s += waited
                else:
                    self._sample_wait_s += waited

    def cancel_sample_waits(self) -> None:
        """Ends every sample wait now in progress with ``SampleWaitCancelled``.

        A restarted learner calls this (through the table) so that sample
        calls its dead predecessor left waiting cannot take data meant for it.
        """
        with self._lock:
            self._sample_waits_cancelled += 1
            self._condition.notify_all()

    def insert(self, num_items: int, deleted: int = 0) -> None:
        """Records ``num_items`` inserts, and the ``deleted`` items they evicted, and wakes waiters."""
        with self._lock:
            self._inserts += num_items
            self._deletes += deleted
            if self._waiting:  # ``_notify`` inlined: this runs on every insert.
                self._condition.notify_all()

    def sample(self, num_items: int) -> None:
        """Records ``num_items`` samples and wakes waiters."""
        with self._lock:
            self._samples += num_items
            self._notify()

    def delete(self, num_items: int) -> None:
        """Records ``num_items`` items evicted or removed and wakes waiters."""
        with self._lock:
            self._deletes += num_items
            self._notify()

    def _notify(self) -> None:
        if self._waiting:
            self._condition.notify_all()

    def _params(self) -> str:
        return (
            f"samples_per_insert={self.samples_per_insert:g}, "
            f"min_size_to_sample={self.min_size_to_sample}, "
            f"window=[{self.min_diff:g}, {self.max_diff:g}]"
        )

    def describe(self) -> str:
        """The configuration and counters, for error messages and logs."""
        with self._lock:
            return (
                f"{type(self).__name__}({self._params()}) with size={self.size}, "
                f"inserts={self._inserts}, samples={self._samples}, deletes={self._deletes}, "
                f"inserts*samples_per_insert-samples={self.diff:g}"
            )

    def get_state(self) -> dict[str, Any]:
        """Counters, wait times and the configuration they belong to."""
        with self._lock:
            return {
                "config": self._params(),
                "inserts": self._inserts,
                "samples": self._samples,
                "deletes": self._deletes,
                "insert_wait_s": self._insert_wait_s,
                "sample_wait_s": self._sample_wait_s,
            }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores counters saved by a limiter with the same configuration."""
        with self._lock:
            if state["config"] != self._params():
                raise ValueError(
                    f"rate limiter state was saved with {state['config']}, this limiter has "
                    f"{self._params()}"
                )
            self._inserts = int(state["inserts"])
            self._samples = int(state["samples"])
            self._deletes = int(state["deletes"])
            self._insert_wait_s = float(state["insert_wait_s"])
            self._sample_wait_s = float(state["sample_wait_s"])
            self._condition.notify_all()


class MinSize(RateLimiter):
    """Blocks samples until the table holds ``min_size_to_sample`` items; never blocks inserts.

    Args:
      min_size_to_sample: Items needed before the first sample, >= 1.
    """

    def __init__(self, min_size_to_sample: int):
        super().__init__(1.0, min_size_to_sample, -math.inf, math.inf)

    def can_insert(self, num_items: int) -> bool:
        """Always True: with ``max_diff = inf`` no insert ever waits (and no lock is needed)."""
        return True

    def _params(self) -> str:
        return f"min_size_to_sample={self.min_size_to_sample}"


class SampleToInsertRatio(RateLimiter):
    """Holds samples per insert near ``samples_per_insert`` once ``min_size_to_sample`` is reached.

    The window is centred on the value d has when the table first reaches
    ``min_size_to_sample`` (no samples yet): with offset = spi * min_size,
    min_diff = offset - error_buffer and max_diff = offset + error_buffer. So
    after warm-up, samples may run ahead of spi * inserts by ``error_buffer``
    and fall behind by as much before the other side waits.

    Args:
      samples_per_insert: Target number of samples per inserted item (> 0).
      min_size_to_sample: Items needed before the first sample (>= 1).
      error_buffer: Half-width of the window, in samples; must be at least
        max(1, samples_per_insert) (the window at least 2 * max(1, spi) wide,
        as in Reverb), since a narrower window can block both sides at once.
    """

    def __init__(self, samples_per_insert: float, min_size_to_sample: int, error_buffer: float):
        if samples_per_insert <= 0:
            raise ValueError(f"samples_per_insert ({samples_per_insert}) must be > 0")
        required = max(1.0, float(samples_per_insert))
        if not error_buffer >= required:
            raise ValueError(
                f"error_buffer ({error_buffer}) must be >= max(1, samples_per_insert) = {required:g}: "
                f"a window narrower than 2 * {required:g} could block inserts and samples at the "
                f"same time (deadlock)"
            )
        offset = samples_per_insert * min_size_to_sample
        super().__init__(samples_per_insert, min_size_to_sample, offset - error_buffer, offset + error_buffer)
        self.error_buffer = float(error_buffer)

    def _params(self) -> str:
        return f"{super()._params()}, error_buffer={self.error_buffer:g}"

    @classmethod
    def with_tolerance(
        cls,
        samples_per_insert: float,
        min_size_to_sample: int,
        tolerance: float,
        sample_batch_size: int,
        insert_batch_size: int,
    ) -> "SampleToInsertRatio":
        """A limiter whose window lets the ratio drift by ``tolerance`` of
        spi * min_size_to_sample, and never by less than twice what one sample
        batch and one insert batch move it, so batched callers on either side
        never deadlock each other.
        """
        error_buffer = max(
            tolerance * samples_per_insert * min_size_to_sample,
            2.0 * max(sample_batch_size, insert_batch_size * samples_per_insert),
        )
        return cls(samples_per_insert, min_size_to_sample, error_buffer)


class Queue(RateLimiter):
    """Turns a table into a bounded queue: each item is sampled exactly once.

    Use it through ``Table.queue`` (FIFO sampler, items removed once sampled).
    Unlike the other limiters it admits only whole batches, because a queue
    can neither overwrite an unread item nor return fewer items than asked:
    n inserts wait until ``size + n <= max_size`` and B samples until
    ``size >= B``. A producer batch n and a consumer batch B are deadlock-free
    when n + B <= max_size + 1 (then either size + n <= max_size or size >= B).
    Inserts never wait on a ratio, so ``max_size`` alone bounds staleness.

    Args:
      max_size: Capacity of the queue in items.
    """

    strict_inserts: ClassVar[bool] = True

    def __init__(self, max_size: int):
        if max_size < 1:
            raise ValueError(f"max_size ({max_size}) must be a positive integer")
        super().__init__(1.0, 1, 0.0, float(max_size))
        self.max_size = int(max_size)

    def can_insert(self, num_items: int) -> bool:
        with self._lock:
            return self._inserts - self._deletes + num_items <= self.max_size

    def can_sample(self, num_items: int) -> bool:
        with self._lock:
            return self._inserts - self._deletes >= max(1, num_items)

    def _check_batch(self, num_items: int) -> None:
        if num_items > self.max_size:
            raise ValueError(f"a batch of {num_items} items can never fit a Queue of max_size {self.max_size}")

    def _params(self) -> str:
        return f"max_size={self.max_size}"
