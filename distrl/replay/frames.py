"""Frame deduplication for image replay: a content-addressed, reference-counted frame pool.

A DQN Atari transition holds ``observation`` and ``next_observation``, each
4 stacked 84x84 uint8 frames: 56 KB, although consecutive stacks share 3 of
their 4 frames and the n-step ``next_observation`` of step t is the
``observation`` of step t + n. Storing each frame once is the memory saving
of Dopamine's circular replay buffer (``OutOfGraphReplayBuffer``, Castro et
al. 2018, "Dopamine: A Research Framework for Deep Reinforcement Learning")
and of Stable-Baselines3's ``ReplayBuffer(optimize_memory_usage=True)``
(Raffin et al. 2021): they find a stack's frames and the next observation by
*position* (the previous and next slots of one writer). Here several actors
insert interleaved batches into one table, so frames are found by *content*
instead: each frame is hashed, equal frames are stored once in a
``FramePool`` and counted by reference, and the storage keeps per item only
int32 entry indices (``distrl/replay/frame_columns.py``); reading gathers
the frames back.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

_HASH_SEED = 0x5EED_F4A3  # Fixed: hashes are identical in every process (checkpoints restore them).
_HASH_SHIFT = np.uint64(4)  # Keep the top 60 bits: Python ints below 2**60 take 32 bytes, not 36.
_INDEX_BYTES_PER_ENTRY = 106  # The dict's share, key and value objects (tracemalloc, 1M entries).


def frame_layout(dtype: np.dtype, shape: Sequence[int]) -> tuple[int, tuple[int, ...]] | None:
    """How one item of a leaf with this dtype and item shape splits into frames.

    uint8 leaves of rank >= 3 are images: a channel/stack-first item (rank 3
    with ``shape[0]`` below both ``shape[1]`` and ``shape[2]``, e.g. [4, 84, 84],
    or any rank >= 4) is ``shape[0]`` frames of ``shape[1:]``; any other
    (e.g. an HWC colour image [84, 84, 3]) is one frame of ``shape``.

    Returns:
      ``(k, frame_shape)``, or None for a leaf that is stored as it is.
    """
    shape = tuple(int(s) for s in shape)
    if np.dtype(dtype) != np.uint8 or len(shape) < 3:
        return None
    if len(shape) >= 4 or (shape[0] < shape[1] and shape[0] < shape[2]):
        return shape[0], shape[1:]
    return 1, shape


class _Claim(NamedTuple):
    """A batch of frames whose stored duplicates are claimed and whose new frames await entries."""

    frames: np.ndarray  # [m, *frame_shape], the batch.
    groups: np.ndarray  # int64 [g]: the position of each distinct frame's representative.
    group_of: np.ndarray  # int64 [m]: each frame's group.
    entries: np.ndarray  # int64 [g]: the pool entry of each group, -1 while new.
    counts: np.ndarray  # int64 [g]: references each group adds.
    hashes: np.ndarray  # uint64 [g].
    indexed: np.ndarray  # bool [g]: a new group that goes into the hash index.
    needed: int  # New entries the batch needs.
    claimed: int  # Distinct stored entries the batch references.


class FramePool:
    """Distinct frames, stored once each, counted by reference and found by content.

    A preallocated ``frames`` array [capacity, *frame_shape] with an int32
    reference count per entry, a free list and a hash index (60-bit hash ->
    entry). ``add`` hashes a batch of frames in one vectorised pass (the
    frame's bytes read as uint32 words, or uint8 where the size is not a
    multiple of 4, times fixed random odd uint64 weights, summed with
    wraparound: multilinear hashing, Lemire and Kaser 2014), dedupes the batch
    with ``np.unique``, and looks up each distinct hash; a hit is verified
    byte for byte, and a frame whose hash collides with a different frame is
    stored as a new, unindexed entry, so the hash never changes what is read
    back. An entry is freed (and leaves the index) when its count drops to 0.

    Args:
      capacity: Number of entries (frames) preallocated, >= 1.
      frame_shape: Shape of one frame, e.g. (84, 84).
      dtype: Frame dtype (uint8 for images).
    Raises:
      ValueError: capacity < 1.
    """

    def __init__(self, capacity: int, frame_shape: Sequence[int], dtype: Any = np.uint8):
        if capacity < 1:
            raise ValueError(f"capacity ({capacity}) must be a positive integer")
        self._capacity = int(capacity)
        self._frame_shape = tuple(int(s) for s in frame_shape)
        self._dtype = np.dtype(dtype)
        self._frames = np.empty((self._capacity, *self._frame_shape), self._dtype)
        self._refcount = np.zeros(self._capacity, np.int32)
        self._hashes = np.zeros(self._capacity, np.uint64)
        self._indexed = np.zeros(self._capacity, bool)  # The entry is the one its hash maps to.
        self._free = np.arange(self._capacity - 1, -1, -1, dtype=np.int64)  # A stack: pops give 0, 1, ...
        self._num_free = self._capacity
        self._index: dict[int, int] = {}
        frame_bytes = math.prod(self._frame_shape) * self._dtype.itemsize
        self._word = np.uint32 if frame_bytes % 4 == 0 else np.uint8
        self._frame_bytes = frame_bytes
        words = frame_bytes // np.dtype(self._word).itemsize
        rng = np.random.default_rng(_HASH_SEED)
        self._weights = rng.integers(0, 2**63, size=words, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

    @property
    def capacity(self) -> int:
        """Number of entries."""
        return self._capacity

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame."""
        return self._frame_shape

    @property
    def size(self) -> int:
        """Live entries: distinct frames referenced now."""
        return self._capacity - self._num_free

    @property
    def num_free(self) -> int:
        """Entries free for new frames."""
        return self._num_free

    @property
    def nbytes(self) -> int:
        """Bytes held: the preallocated arrays plus an estimate of the hash index
        (106 bytes per entry: its dict share and its key and value objects)."""
        arrays = (self._frames, self._refcount, self._hashes, self._indexed, self._free, self._weights)
        return sum(a.nbytes for a in arrays) + _INDEX_BYTES_PER_ENTRY * len(self._index)

    def refcount(self, indices: np.ndarray) -> np.ndarray:
        """int32 reference counts of the entries ``indices`` (0: free)."""
        return self._refcount[indices]

    def hash(self, frames: np.ndarray) -> np.ndarray:
        """uint64 [m] 60-bit content hashes of ``frames`` [m, *frame_shape] (or of their ``_rows``)."""
        words = self._rows(frames).view(np.uint8).view(self._word)
        return (words * self._weights).sum(axis=1) >> _HASH_SHIFT

    def _rows(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` as rows [m, words] of uint64 words (uint8 where the size is not a multiple of 8)."""
        data = np.ascontiguousarray(frames).view(np.uint8).reshape(len(frames), self._frame_bytes)
        return data.view(np.uint64) if self._frame_bytes % 8 == 0 else data

    def add(self, frames: np.ndarray) -> np.ndarray:
        """Stores a batch of frames, each distinct frame once, and counts one reference per frame.

        Args:
          frames: [m, *frame_shape] of the pool's dtype.
        Returns:
          int64 [m] entry indices (equal frames get the same entry).
        Raises:
          ValueError: wrong shape or dtype, or fewer free entries than new frames.
        """
        claim = self.claim(frames)
        if claim.needed > self._num_free:
            self.cancel(claim)
            raise ValueError(f"frame pool full: {claim.needed} new frames, {self._num_free} free entries")
        return self.commit(claim)

    def claim(self, frames: np.ndarray) -> _Claim:
        """First half of ``add``: hashes and dedupes ``frames`` and references the
        frames already stored; ``commit`` then stores the new ones (after the
        caller freed room) or ``cancel`` drops the references again."""
        frames = np.asarray(frames)
        if frames.dtype != self._dtype or frames.shape[1:] != self._frame_shape:
            raise ValueError(
                f"frames have dtype {frames.dtype} and shape {frames.shape}, "
                f"the pool holds {self._dtype} frames of shape {self._frame_shape}"
            )
        rows = self._rows(frames)
        hashes = self.hash(rows)
        groups, group_of, indexed = _group(hashes, rows)
        group_hashes = hashes[groups]
        index = self._index
        entries = np.array([index.get(h, -1) for h in group_hashes.tolist()], np.int64)
        entries[~indexed] = -1
        hit = np.flatnonzero(entries >= 0)
        if hit.size:
            equal = _equal_rows(self._rows(self._frames[entries[hit]]), rows[groups[hit]])
            entries[hit[~equal]] = -1  # Collides with a stored frame: a new, unindexed entry.
            indexed[hit[~equal]] = False
            hit = hit[equal]
        counts = np.bincount(group_of, minlength=len(groups))
        self._refcount[entries[hit]] += counts[hit].astype(np.int32)  # Distinct entries.
        indexed[hit] = False
        return _Claim(frames, groups, group_of, entries, counts, group_hashes, indexed,
                      len(groups) - hit.size, int(hit.size))

    def fits(self, claim: _Claim) -> bool:
        """True when the claim's new frames fit once every unclaimed entry is freed."""
        return claim.needed <= self._capacity - claim.claimed

    def commit(self, claim: _Claim) -> np.ndarray:
        """Second half of ``add``: writes the new frames into free entries.

        Returns:
          int64 [m] entry indices of the claimed batch.
        Raises:
          ValueError: fewer free entries than new frames.
        """
        new = np.flatnonzero(claim.entries < 0)
        if new.size > self._num_free:
            raise ValueError(f"frame pool full: {new.size} new frames, {self._num_free} free entries")
        end = self._num_free
        self._num_free = start = end - new.size
        taken = self._free[start:end][::-1].copy()
        self._frames[taken] = claim.frames[claim.groups[new]]
        self._refcount[taken] = claim.counts[new]
        self._hashes[taken] = claim.hashes[new]
        indexed = claim.indexed[new]
        self._indexed[taken] = indexed
        self._index.update(zip(claim.hashes[new][indexed].tolist(), taken[indexed].tolist()))
        claim.entries[new] = taken
        return claim.entries[claim.group_of]

    def cancel(self, claim: _Claim) -> None:
        """Drops the references ``claim`` took (stored entries only; nothing is freed)."""
        hit = claim.entries >= 0
        self._refcount[claim.entries[hit]] -= claim.counts[hit].astype(np.int32)

    def release(self, indices: np.ndarray) -> int:
        """Drops one reference per index (repeats drop several); frees entries reaching 0.

        Returns:
          The number of entries freed.
        Raises:
          ValueError: more references dropped than an entry holds (nothing changes then).
        """
        indices = np.asarray(indices).ravel()
        if not indices.size:
            return 0
        entries, counts = np.unique(indices, return_counts=True)
        left = self._refcount[entries] - counts
        if left.min() < 0:
            raise ValueError("released more references than the frame pool holds")
        self._refcount[entries] = left
        dead = entries[left == 0]
        if dead.size:
            for h in self._hashes[dead[self._indexed[dead]]].tolist():
                del self._index[h]
            self._indexed[dead] = False
            self._free[self._num_free : self._num_free + dead.size] = dead
            self._num_free += dead.size
        return int(dead.size)

    def freed_by_prefix(self, indices: np.ndarray) -> np.ndarray:
        """Entries that releasing the first p + 1 rows of ``indices`` would free.

        Args:
          indices: [c, r] entry indices of c items (r references each), in release order.
        Returns:
          int64 [c], non-decreasing.
        """
        c = len(indices)
        if not c:
            return np.zeros(0, np.int64)
        entries, inverse, counts = np.unique(indices.ravel(), return_inverse=True, return_counts=True)
        last = np.zeros(len(entries), np.int64)  # The row of each entry's last reference.
        np.maximum.at(last, inverse.ravel(), np.repeat(np.arange(c), indices.shape[1]))
        freed = counts == self._refcount[entries]
        return np.cumsum(np.bincount(last[freed], minlength=c))

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """The frames at entry ``indices`` (any shape S): an array [*S, *frame_shape] (a copy)."""
        return self._frames.take(indices, axis=0)

    def get_state(self, copy: bool = True) -> dict[str, Any]:
        """The live entries (indices, frames, counts, hashes), for checkpoints; ``copy=False``:
        the whole pool's arrays as views (no second copy of the frames; ``entries`` is None)."""
        if not copy:
            return {
                "capacity": self._capacity, "frame_shape": self._frame_shape, "entries": None,
                "frames": self._frames, "refcount": self._refcount, "hashes": self._hashes, "indexed": self._indexed,
            }
        live = np.flatnonzero(self._refcount > 0)
        return {
            "capacity": self._capacity,
            "frame_shape": self._frame_shape,
            "entries": live,
            "frames": self._frames[live],
            "refcount": self._refcount[live],
            "hashes": self._hashes[live],
            "indexed": self._indexed[live],
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores ``get_state`` output into a pool of the same capacity and frame shape.

        Raises:
          ValueError: the capacity or frame shape differs.
        """
        if state["capacity"] != self._capacity or tuple(state["frame_shape"]) != self._frame_shape:
            raise ValueError(
                f"state is a pool of {state['capacity']} frames of shape {tuple(state['frame_shape'])}, "
                f"this pool holds {self._capacity} of shape {self._frame_shape}"
            )
        self._refcount[:] = 0
        self._indexed[:] = False
        if state["entries"] is None:  # get_state(copy=False): every entry.
            self._frames[:] = state["frames"]
            self._refcount[:] = state["refcount"]
            self._hashes[:] = state["hashes"]
            self._indexed[:] = state["indexed"]
            live = np.flatnonzero(self._refcount > 0)
        else:
            live = np.asarray(state["entries"], np.int64)
            self._frames[live] = state["frames"]
            self._refcount[live] = state["refcount"]
            self._hashes[live] = state["hashes"]
            self._indexed[live] = state["indexed"]
        free = np.flatnonzero(self._refcount == 0)[::-1]
        self._num_free = free.size
        self._free[: free.size] = free
        indexed = live[self._indexed[live]]
        self._index = dict(zip(self._hashes[indexed].tolist(), indexed.tolist()))


def _equal_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool [m]: whether row a[i] equals row b[i]."""
    return (a == b).all(axis=1)


def _group(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups equal rows by their keys, verified byte for byte.

    Returns:
      ``(groups, group_of, first)``: each group's representative row (the
      first with its key, or a row that differs from it: a key collision,
      which forms its own group), each row's group, and which groups'
      representatives are the first with their key.
    """
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    representative = first[inverse]
    copies = np.flatnonzero(representative != np.arange(len(keys)))
    if copies.size:
        equal = _equal_rows(rows[copies], rows[representative[copies]])
        if not equal.all():
            representative[copies[~equal]] = copies[~equal]
            groups, group_of = np.unique(representative, return_inverse=True)
            return groups, group_of, groups == first[inverse[groups]]
    return first, inverse, np.ones(len(first), bool)
