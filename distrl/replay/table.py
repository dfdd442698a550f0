"""A replay table: storage, sampler and rate limiter under one lock.

The table is the unit a replay server hosts and a ``LocalReplayClient`` calls
directly. It assigns keys (global insertion ids, int64), evicts FIFO when
full, retires items sampled ``max_times_sampled`` times, and reports every
eviction and removal to both the sampler and the rate limiter.

Locking: the table uses its rate limiter's lock as its own, so a call
waiting on the limiter releases the whole table and other threads can insert
or sample meanwhile; the check, the data write and the counter update happen
under the lock without a gap.

Image replay: ``deduplicate_frames=True`` stores each distinct uint8 frame
once (the memory saving of Dopamine's circular replay buffer and SB3's
``optimize_memory_usage``; found by content here, because several actors
insert interleaved batches), see ``distrl/replay/frames.py``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from distrl.replay.rate_limiters import Queue, RateLimiter
from distrl.replay.samplers import FifoSampler, Sampler
from distrl.replay.storage import ArrayStorage
from distrl.types import Nest, SampleBatch

DEFAULT_TIMEOUT_S = 600.0
"""Longest a blocking insert or sample waits on the rate limiter, in seconds."""


class Table:
    """A bounded, rate-limited replay table.

    Args:
      name: Name used in info() and error messages.
      max_size: Capacity in items; beyond it the oldest item is evicted.
      sampler: Chooses sampled items (bound to this table; one table each).
      rate_limiter: Paces inserts against samples (one table each).
      max_times_sampled: Remove an item once it has been sampled this many
        times; 0 keeps items until they are evicted. A batch drawn with
        replacement may hold an item more often than this; it is removed
        after that batch.
      deduplicate_frames: Store every uint8 leaf of rank >= 3 (an image:
        [k, H, W] with k < H, W and [k, ...] of rank >= 4 are k frames, e.g.
        a [4, 84, 84] stack; others one frame, e.g. HWC [84, 84, 3]) as int32
        indices into a reference-counted pool of distinct frames shared by
        all such leaves (observation and next_observation). Samples are
        identical to the plain layout; a 1,000,000-transition DQN Atari table
        takes 7.4 GB instead of 56 GB (``python -m distrl.bench
        replay-atari``). When the pool is full the oldest items are evicted
        early and reported like FIFO evictions (``info()`` counts them in
        ``frame_pool_evictions``). Other leaves are unchanged.
      frames_per_item: Pool entries budgeted per item (> 0): 1.0 fits stacks
        of consecutive frames; k-channel images need k. None: 1.0 for items
        of 4 or more frames (a stack), k for k <= 3 (colour planes).
      frame_pool_reserve: Extra pool entries beyond ``frames_per_item *
        max_size`` (None: 2 * k * 2048, room for the first stacks and n-step
        tails of that many episodes).
    Raises:
      ValueError: max_times_sampled < 0, min_size_to_sample > max_size,
        frames_per_item <= 0 or frame_pool_reserve < 0.
    """

    def __init__(
        self,
        name: str,
        max_size: int,
        sampler: Sampler,
        rate_limiter: RateLimiter,
        max_times_sampled: int = 0,
        deduplicate_frames: bool = False,
        frames_per_item: float | None = None,
        frame_pool_reserve: int | None = None,
    ):
        if max_times_sampled < 0:
            raise ValueError(f"max_times_sampled ({max_times_sampled}) must be >= 0")
        if rate_limiter.min_size_to_sample > max_size:
            raise ValueError(
                f"table {name!r}: rate limiter min_size_to_sample ({rate_limiter.min_size_to_sample}) "
                f"exceeds max_size ({max_size}), so sampling could never start"
            )
        self.name = name
        self._max_size = int(max_size)
        self._storage = ArrayStorage(max_size, deduplicate_frames, frames_per_item, frame_pool_reserve)
        self._deduplicate_frames = bool(deduplicate_frames)
        self._sampler = sampler
        self._sampler.bind(max_size)
        self._limiter = rate_limiter
        self._lock = rate_limiter.lock
        self._max_times_sampled = int(max_times_sampled)
        self._times_sampled = np.zeros(max_size if max_times_sampled else 0, dtype=np.int64)
        self._waiter = f"table {name!r}"

    @classmethod
    def queue(cls, name: str, max_size: int) -> "Table":
        """A FIFO queue: every item is sampled exactly once, in insertion order.

        Inserts wait while the queue is full and samples while it holds fewer
        items than asked, so ``max_size`` bounds how stale an item can get.
        """
        return cls(name, max_size, FifoSampler(), Queue(max_size), max_times_sampled=1)

    @property
    def max_size(self) -> int:
        """Capacity in items."""
        return self._storage.max_size

    @property
    def size(self) -> int:
        """Items held now."""
        return self._storage.size

    @property
    def nbytes(self) -> int:
        """Bytes the table's storage holds (its columns are preallocated at ``max_size``; 0 before
        the first insert fixes their shapes)."""
        return self._storage.nbytes

    @property
    def sampler(self) -> Sampler:
        """The table's sampler (e.g. to anneal a prioritized sampler's beta)."""
        return self._sampler

    @property
    def rate_limiter(self) -> RateLimiter:
        """The table's rate limiter."""
        return self._limiter

    def can_insert(self, num_items: int) -> bool:
        """True when an insert of ``num_items`` would not wait now."""
        return self._limiter.can_insert(num_items)

    def can_sample(self, num_items: int) -> bool:
        """True when a sample of ``num_items`` would not wait now."""
        return self._limiter.can_sample(num_items)

    def insert(
        self,
        items: Nest,
        priorities: np.ndarray | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        block: bool = True,
    ) -> np.ndarray:
        """Inserts a batch of items (every leaf has the same leading batch axis).

        Args:
          items: The batch, e.g. a ``Transition`` of stacked arrays.
          priorities: One priority per item for a prioritized sampler; None
            gives new items the sampler's max priority.
          timeout: Seconds to wait for the rate limiter at most.
          block: False never waits on the limiter: the batch goes in even past
            the ratio (the single-process mode then runs learner steps while
            ``can_sample`` holds, which restores it), except on a limiter with
            ``strict_inserts`` (a queue), where an insert that is not allowed
            raises at once instead of overwriting unread items.
        Returns:
          int64 keys of the inserted items, in order.
        Raises:
          ValueError: the batch does not match the table's signature or is
            larger than max_size.
          TimeoutError: the limiter did not allow the insert in time.
        """
        storage = self._storage
        checked = storage.allocated
        leaves = storage.flatten(items)
        num_items = leaves[0].shape[0]
        if num_items > self._max_size:
            raise ValueError(
                f"table {self.name!r}: cannot insert a batch of {num_items} items, max_size is {self._max_size}"
            )
        if priorities is not None:
            priorities = np.asarray(priorities, dtype=np.float64)
            if priorities.shape != (num_items,):
                raise ValueError(
                    f"table {self.name!r}: priorities have shape {priorities.shape}, expected ({num_items},)"
                )
        limiter = self._limiter
        with self._lock:
            if (block or limiter.strict_inserts) and not limiter.can_insert(num_items):
                limiter.await_can_insert(num_items, timeout if block else 0.0, self._waiter)
            if not checked:
                # Another thread may have fixed the signature since the check above.
                leaves = storage.flatten(items)
            slots, keys, evicted = storage.add_leaves(items, leaves)
            self._sampler.insert(slots, priorities)
            if self._deduplicate_frames and storage.frames is not None:
                early = storage.frames.take_evicted()  # Evicted for frame room: never sampled again.
                if early.size:
                    self._sampler.remove(early)
            if self._max_times_sampled:
                self._times_sampled[slots] = 0
            limiter.insert(num_items, evicted)
            return keys

    def sample(self, batch_size: int, timeout: float = DEFAULT_TIMEOUT_S, block: bool = True) -> SampleBatch:
        """Samples a batch, waiting on the rate limiter first.

        Args:
          batch_size: Number of items (the limiter counts ``batch_size`` samples).
          timeout: Seconds to wait for the rate limiter at most.
          block: False raises at once when the limiter does not allow it now.
        Returns:
          ``SampleBatch(keys, data, probabilities, weights)``.
        Raises:
          TimeoutError: the limiter did not allow the sample in time (or now,
            with ``block=False``); the message names the limiter's state.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size ({batch_size}) must be >= 1")
        with self._lock:
            self._limiter.await_can_sample(batch_size, timeout if block else 0.0, self._waiter)
            slots, probabilities, weights = self._sampler.sample(batch_size)
            batch = SampleBatch(self._storage.keys(slots), self._storage.get(slots), probabilities, weights)
            self._limiter.sample(batch_size)
            if self._max_times_sampled:
                self._retire(slots)
            return batch

    def cancel_sample_waits(self) -> None:
        """Ends the sample calls now waiting on the limiter (``RateLimiter.cancel_sample_waits``)."""
        self._limiter.cancel_sample_waits()

    def _retire(self, slots: np.ndarray) -> None:
        """Counts a sample of ``slots`` and removes items that reached max_times_sampled."""
        np.add.at(self._times_sampled, slots, 1)
        done = slots[self._times_sampled[slots] >= self._max_times_sampled]
        if done.size:
            done = np.unique(done)
            self._sampler.remove(done)
            self._limiter.delete(self._storage.remove(done))

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Sets priorities of the items with ``keys``; keys of items already
        evicted or removed are ignored."""
        priorities = np.asarray(priorities, dtype=np.float64)
        with self._lock:
            slots, present = self._storage.find(keys)
            if not present.all():
                slots = slots[present]
                priorities = np.broadcast_to(priorities, present.shape)[present]
            self._sampler.update_priorities(slots, priorities)

    def info(self) -> dict[str, Any]:
        """Counters: name, size, max_size, inserts, samples, evictions (FIFO
        overwrites, and items evicted early for frame room, also counted in
        frame_pool_evictions), removals (items retired by max_times_sampled),
        observed samples per insert, seconds spent waiting on each side, the
        frame pools' live and total entries (0 without deduplicated images)
        and replay_bytes (storage arrays, frame pools and hash index)."""
        with self._lock:
            limiter = self._limiter
            frames = self._storage.frames
            return {
                "name": self.name,
                "size": self.size,
                "max_size": self.max_size,
                "inserts": limiter.inserts,
                "samples": limiter.samples,
                "evictions": self._storage.evictions,
                "removals": limiter.deletes - self._storage.evictions,
                "samples_per_insert": limiter.samples / limiter.inserts if limiter.inserts else 0.0,
                "insert_wait_s": limiter.insert_wait_s,
                "sample_wait_s": limiter.sample_wait_s,
                "rate_limiter": limiter.describe(),
                "frame_pool_evictions": frames.evictions if frames is not None else 0,
                "frame_pool_entries": frames.entries if frames is not None else 0,
                "frame_pool_capacity": frames.capacity if frames is not None else 0,
                "replay_bytes": self._storage.nbytes,
            }

    def get_state(self, copy: bool = True) -> dict[str, Any]:
        """Everything needed to resume the table: data, sampler, limiter counters (``copy=False``:
        the data as views of the live arrays, for ``save``)."""
        with self._lock:
            return {
                "name": self.name,
                "max_times_sampled": self._max_times_sampled,
                "storage": self._storage.get_state(copy),
                "sampler": self._sampler.get_state(),
                "rate_limiter": self._limiter.get_state(),
                "times_sampled": self._times_sampled.copy(),
            }

    def save(self, path: str | os.PathLike) -> None:
        """Writes the table's state to ``path`` (``distrl.utils.state_files``: no pickle).

        The data is written straight from the live arrays, with the table's
        lock held, so the file is a consistent snapshot and a large table
        needs no second copy in memory; inserts and samples wait meanwhile.
        """
        from distrl.utils.state_files import save_state  # torch; tables are used without it too.

        with self._lock:
            save_state(path, self.get_state(copy=False))

    def restore(self, path: str | os.PathLike) -> None:
        """Loads a ``save`` file into this table (built with the same arguments)."""
        from distrl.utils.state_files import load_state

        self.set_state(load_state(path))

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores ``get_state`` output into a table built with the same arguments."""
        with self._lock:
            if state["max_times_sampled"] != self._max_times_sampled:
                raise ValueError(
                    f"table {self.name!r}: state has max_times_sampled {state['max_times_sampled']}, "
                    f"this table has {self._max_times_sampled}"
                )
            self._storage.set_state(state["storage"])
            self._sampler.set_state(state["sampler"])
            self._limiter.set_state(state["rate_limiter"])
            self._times_sampled[:] = state["times_sampled"]

    def __repr__(self) -> str:
        return f"Table(name={self.name!r}, size={self.size}, max_size={self.max_size}, {self._limiter.describe()})"

