"""Samplers: which stored items a ``sample`` call returns.

A sampler knows items only by their storage slot. The table tells it about
every change to the set of items (``insert``, which also covers items evicted
by being overwritten, and ``remove``) and asks it for batches of slots. Every
operation is vectorised over the batch; the random samplers own a seeded
``np.random.Generator`` so that a run is reproducible.
"""

from __future__ import annotations

import abc
from typing import Any, Mapping, NamedTuple

import numpy as np

from distrl.replay.sum_tree import SumTree


class Sampled(NamedTuple):
    """Slots chosen by a sampler, with their sampling probabilities P(i) and
    importance weights (float32, ones where no correction applies)."""

    slots: np.ndarray
    probabilities: np.ndarray
    weights: np.ndarray


class Sampler(abc.ABC):
    """Chooses slots to sample; bound to exactly one table's storage."""

    def __init__(self) -> None:
        self._capacity = 0

    @property
    def capacity(self) -> int:
        """Number of slots of the storage this sampler is bound to (0 before ``bind``)."""
        return self._capacity

    def bind(self, capacity: int) -> None:
        """Allocates the per-slot state; called once by the table that owns the sampler."""
        if self._capacity:
            raise ValueError(f"{type(self).__name__} is already bound to a table; use one per table")
        self._capacity = int(capacity)
        self._allocate()

    @abc.abstractmethod
    def _allocate(self) -> None:
        """Creates the per-slot arrays for ``self.capacity`` slots."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Number of items the sampler can choose from."""

    @abc.abstractmethod
    def insert(self, slots: np.ndarray, priorities: np.ndarray | None) -> None:
        """Registers new items at distinct ``slots``; an item still held at one of
        those slots has been evicted and is replaced."""

    @abc.abstractmethod
    def remove(self, slots: np.ndarray) -> None:
        """Forgets the items at ``slots`` (removed without replacement)."""

    @abc.abstractmethod
    def sample(self, batch_size: int) -> Sampled:
        """Chooses ``batch_size`` slots among the items present."""

    def update_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Sets new priorities for items at ``slots``; ignored by samplers without priorities."""

    @abc.abstractmethod
    def get_state(self) -> dict[str, Any]:
        """Per-slot state and RNG state, for checkpoints."""

    @abc.abstractmethod
    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a state from ``get_state`` (the sampler must already be bound)."""

    def _check_not_empty(self, batch_size: int) -> None:
        if self.size == 0:
            raise ValueError(f"cannot sample {batch_size} items: {type(self).__name__} has no items")


class UniformSampler(Sampler):
    """Samples items uniformly with replacement: P(i) = 1 / N.

    Keeps the present slots in a dense array (with each slot's position in it)
    so that sampling is one ``rng.integers`` and one gather however many items
    have been removed; removal swaps the last entries into the holes. Until
    the first removal the dense array is the identity (slots fill in ring
    order), and sampling skips that gather, a random read of a large array.

    Args:
      seed: Seed of the sampler's own random generator.
    """

    def __init__(self, seed: int | None = None):
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._size = 0
        self._identity = True  # dense[i] == i for every i < size.

    def _allocate(self) -> None:
        self._dense = np.empty(self._capacity, dtype=np.int64)
        self._position = np.full(self._capacity, -1, dtype=np.int64)
        self._size = 0
        self._identity = True

    @property
    def size(self) -> int:
        return self._size

    def insert(self, slots: np.ndarray, priorities: np.ndarray | None) -> None:
        if self._size == self._capacity:
            return  # Every slot holds an item: these items replace evicted ones in place.
        new = slots[self._position[slots] < 0]
        if new.size:
            end = self._size + new.size
            positions = np.arange(self._size, end)
            self._identity = self._identity and np.array_equal(new, positions)
            self._dense[self._size : end] = new
            self._position[new] = positions
            self._size = end

    def remove(self, slots: np.ndarray) -> None:
        slots = np.unique(slots)
        slots = slots[self._position[slots] >= 0]
        if not slots.size:
            return
        self._identity = False
        remaining = self._size - slots.size
        holes = self._position[slots]
        self._position[slots] = -1
        tail = self._dense[remaining : self._size]
        movers = tail[self._position[tail] >= 0]
        holes = holes[holes < remaining]
        self._dense[holes] = movers
        self._position[movers] = holes
        self._size = remaining

    def sample(self, batch_size: int) -> Sampled:
        self._check_not_empty(batch_size)
        slots = self._rng.integers(0, self._size, size=batch_size)
        if not self._identity:
            slots = self._dense.take(slots)
        probabilities = np.full(batch_size, 1.0 / self._size)
        return Sampled(slots, probabilities, np.ones(batch_size, dtype=np.float32))

    def get_state(self) -> dict[str, Any]:
        return {
            "dense": self._dense[: self._size].copy(),
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        dense = np.asarray(state["dense"], dtype=np.int64)
        self._allocate()
        self._size = dense.size
        self._dense[: self._size] = dense
        self._position[dense] = np.arange(self._size)
        self._identity = bool(np.array_equal(dense, np.arange(self._size)))
        self._rng.bit_generator.state = state["rng"]


class PrioritizedSampler(Sampler):
    """Proportional prioritized sampling (Schaul et al. 2016, "Prioritized
    Experience Replay").

    An item with priority p (e.g. its absolute TD error) is stored as
    q = (p + eps) ** alpha and drawn with probability P(i) = q_i / sum_j q_j;
    alpha = 0 is uniform sampling, alpha = 1 fully proportional. New items get
    the largest priority seen so far (initially 1), so every item is likely to
    be sampled at least once before its priority is known.

    Batches are stratified: the total mass is split into ``batch_size`` equal
    segments and one target is drawn uniformly in each, which lowers the
    variance of the batch composition; slots come back in storage order.

    The importance weight corrects the bias of non-uniform sampling:
    w_i = (N * P(i)) ** -beta / max_j w_j, with N the number of items and the
    max taken over the sampled batch, so weights lie in (0, 1] and only ever
    scale updates down. beta = 1 corrects fully; ``beta`` is a public attribute
    so a schedule can anneal it.

    Args:
      alpha: Priority exponent, >= 0.
      beta: Importance-weight exponent, in [0, 1].
      eps: Added to every priority so that no item has probability 0, > 0.
      seed: Seed of the sampler's own random generator.
    """

    def __init__(self, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-6, seed: int | None = None):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha ({alpha}) must be >= 0")
        if not 0 <= beta <= 1:
            raise ValueError(f"beta ({beta}) must be in [0, 1]")
        if eps <= 0:
            raise ValueError(f"eps ({eps}) must be > 0")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
        self._rng = np.random.default_rng(seed)
        self._max_priority = 1.0
        self._size = 0

    def _allocate(self) -> None:
        self._tree = SumTree(self._capacity)
        self._present = np.zeros(self._capacity, dtype=bool)

    @property
    def size(self) -> int:
        return self._size

    @property
    def max_priority(self) -> float:
        """Largest priority ever set (before eps and alpha); new items get it."""
        return self._max_priority

    @property
    def sum_tree(self) -> SumTree:
        """The tree of stored values q = (p + eps) ** alpha."""
        return self._tree

    def _stored(self, priorities: np.ndarray) -> np.ndarray:
        priorities = np.asarray(priorities, dtype=np.float64)
        if priorities.size and (not np.all(np.isfinite(priorities)) or priorities.min() < 0):
            raise ValueError("priorities must be finite and non-negative")
        if priorities.size:
            self._max_priority = max(self._max_priority, float(priorities.max()))
        return (priorities + self.eps) ** self.alpha

    def insert(self, slots: np.ndarray, priorities: np.ndarray | None) -> None:
        if priorities is None:
            values = np.full(slots.size, (self._max_priority + self.eps) ** self.alpha)
        else:
            values = self._stored(np.broadcast_to(priorities, slots.shape))
        self._size += int(slots.size - np.count_nonzero(self._present[slots]))
        self._present[slots] = True
        start = int(slots[0]) if slots.size else 0
        if slots.size > 1 and slots[-1] - start == slots.size - 1 and np.all(np.diff(slots) == 1):
            self._tree.set_range(start, values)  # Consecutive slots: the usual insert.
        else:
            self._tree.set(slots, values)

    def remove(self, slots: np.ndarray) -> None:
        slots = np.unique(slots)
        slots = slots[self._present[slots]]
        self._present[slots] = False
        self._size -= slots.size
        self._tree.set(slots, np.zeros(slots.size))

    def update_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Sets priorities of present items; slots that hold no item are ignored."""
        slots = np.asarray(slots, dtype=np.int64)
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), slots.shape)
        present = self._present[slots]
        self._tree.set(slots[present], self._stored(priorities[present]))

    def sample(self, batch_size: int) -> Sampled:
        self._check_not_empty(batch_size)
        total = self._tree.total
        targets = (np.arange(batch_size) + self._rng.random(batch_size)) * (total / batch_size)
        slots = self._tree.find(targets)
        probabilities = self._tree.get(slots) / total
        weights = (self._size * probabilities) ** -self.beta
        weights /= weights.max()
        return Sampled(slots, probabilities, weights.astype(np.float32))

    def get_state(self) -> dict[str, Any]:
        return {
            "values": self._tree.get_state(),
            "present": self._present.copy(),
            "max_priority": self._max_priority,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._tree.set_state(state["values"])
        self._present[:] = state["present"]
        self._size = int(np.count_nonzero(self._present))
        self._max_priority = float(state["max_priority"])
        self._rng.bit_generator.state = state["rng"]


class FifoSampler(Sampler):
    """Returns the oldest items first, without randomness (queue mode).

    Items arrive in ring order and leave only from the front (FIFO eviction,
    or removal once sampled), so the items present are the contiguous ring
    range [head, head + size) and a batch is the first ``batch_size`` of it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._head = 0
        self._size = 0

    def _allocate(self) -> None:
        self._head = 0
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def insert(self, slots: np.ndarray, priorities: np.ndarray | None) -> None:
        if not slots.size:
            return
        tail = (self._head + self._size) % self._capacity
        if slots[0] != tail:
            raise ValueError(f"FifoSampler expects items in ring order: next slot {tail}, got {slots[0]}")
        overflow = max(0, self._size + slots.size - self._capacity)
        self._head = (self._head + overflow) % self._capacity
        self._size += slots.size - overflow

    def remove(self, slots: np.ndarray) -> None:
        slots = np.unique(slots)
        if not slots.size:
            return
        ages = (slots - self._head) % self._capacity
        if ages.max() >= slots.size or slots.size > self._size:
            raise ValueError("FifoSampler can only remove its oldest items")
        self._head = (self._head + slots.size) % self._capacity
        self._size -= slots.size

    def sample(self, batch_size: int) -> Sampled:
        if batch_size > self._size:
            raise ValueError(f"FifoSampler cannot sample {batch_size} items: it holds {self._size}")
        slots = (self._head + np.arange(batch_size)) % self._capacity
        return Sampled(slots, np.ones(batch_size), np.ones(batch_size, dtype=np.float32))

    def get_state(self) -> dict[str, Any]:
        return {"head": self._head, "size": self._size}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._head = int(state["head"])
        self._size = int(state["size"])
