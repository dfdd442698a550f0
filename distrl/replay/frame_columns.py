"""The framed leaves of an ``ArrayStorage``: image columns stored as indices into frame pools.

With ``deduplicate_frames`` every uint8 image leaf (``frame_layout``) is kept
as an int32 column [max_size, k] of ``FramePool`` entries, one pool per frame
shape, so ``observation`` and ``next_observation`` share their frames. A pool
is budgeted, not sized for the worst case: a batch whose new frames do not
fit evicts the oldest items early (FIFO, the order the ring overwrites),
which the table reports like ring evictions.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from distrl.replay.frames import FramePool, _Claim, frame_layout

RESERVE_EPISODES = 2048
"""Episodes' worth of spare pool entries: the default reserve of a pool of
k-frame items is ``2 * k * RESERVE_EPISODES`` entries (each episode's first
stack and n-step tail, and each interleaved actor, hold a few frames more
than one per item)."""

_CHUNK = 256  # Items scanned at a time for the oldest present ones.


class FrameColumns:
    """Index columns and frame pools of one storage's image leaves.

    A pool shared by leaves of k_1, k_2, ... frames per item has
    ``min(ceil(max_size * frames_per_item) + reserve, max_size * (k_1 + k_2 + ...))``
    entries (at least one item's worth; the upper bound is the naive
    layout), ``reserve`` defaulting to ``2 * max(k_i) * RESERVE_EPISODES``.
    Stacks of consecutive frames add about one new frame per item, so 1.0
    fits them; k channels of one image add k. The default
    ``frames_per_item`` (None) reads k = 4 or more as a stack (1 new frame
    per item: Atari's [4, 84, 84]) and k <= 3 as the colour planes of one
    image (k: an RGB [3, H, W]; 1 for HWC images, which are one frame), sums
    that over the pool's leaves and halves it (each image appears as
    observation and next_observation): two cameras need twice one.

    Args:
      max_size: The storage's capacity in items.
      signature: ``(dtype, item shape)`` of every leaf, in leaf order.
      removed: The storage's bool [max_size] removed-early flags; items
        evicted for room are flagged in it.
      frames_per_item: Pool entries budgeted per item, > 0; None: the default above.
      reserve: Extra entries per pool, >= 0; None: the default above.
    Raises:
      ValueError: frames_per_item <= 0 or reserve < 0.
    """

    def __init__(self, max_size: int, signature: Sequence[tuple[np.dtype, tuple[int, ...]]],
                 removed: np.ndarray, frames_per_item: float | None = None, reserve: int | None = None):
        check_options(frames_per_item, reserve)
        self._max_size = max_size
        self._removed = removed
        self.positions: list[int] = []  # Leaf position of each framed leaf.
        self.shapes: list[tuple[int, ...]] = []  # Its item shape.
        self.columns: list[np.ndarray] = []  # Its int32 [max_size, k] entry indices.
        self.pools: list[FramePool] = []
        self._pool_of: list[int] = []  # Its pool.
        self.evictions = 0  # Items evicted early for frame room.
        self._cursor = 0  # Every key below it is absent.
        self._evicted = np.zeros(0, np.int64)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for position, (dtype, shape) in enumerate(signature):
            layout = frame_layout(dtype, shape)
            if layout is not None:
                by_shape.setdefault(layout[1], []).append(len(self.positions))
                self.positions.append(position)
                self.shapes.append(tuple(shape))
                self.columns.append(np.zeros((max_size, layout[0]), np.int32))
        self._pool_of = [0] * len(self.positions)
        for pool_id, (frame_shape, members) in enumerate(by_shape.items()):
            ks = [self.columns[j].shape[1] for j in members]
            spare = 2 * max(ks) * RESERVE_EPISODES if reserve is None else int(reserve)
            # Default: each image of an observation adds 1 new frame per item when it is a stack of
            # 4+ frames, k when its k <= 3 "frames" are colour planes; an item holds each image twice
            # (observation and next_observation), so the sum over its leaves is halved.
            per_item = frames_per_item if frames_per_item is not None else max(
                1.0, sum(1 if k >= 4 else k for k in ks) / 2)
            capacity = min(math.ceil(max_size * per_item) + spare, max_size * sum(ks))
            self.pools.append(FramePool(max(capacity, sum(ks)), frame_shape, np.uint8))
            for j in members:
                self._pool_of[j] = pool_id

    def __bool__(self) -> bool:
        return bool(self.positions)

    @property
    def entries(self) -> int:
        """Live pool entries (distinct frames held), over all pools."""
        return sum(pool.size for pool in self.pools)

    @property
    def capacity(self) -> int:
        """Pool entries, over all pools."""
        return sum(pool.capacity for pool in self.pools)

    @property
    def nbytes(self) -> int:
        """Bytes of the pools (with their hash indices); the columns are storage arrays."""
        return sum(pool.nbytes for pool in self.pools)

    def take_evicted(self) -> np.ndarray:
        """int64 slots of the items the last ``add`` evicted for room (then forgotten)."""
        evicted, self._evicted = self._evicted, np.zeros(0, np.int64)
        return evicted

    def pool_rows(self, slots: np.ndarray) -> list[np.ndarray]:
        """Per pool, the entry indices [len(slots), sum of its k] of the items at ``slots``."""
        rows: list[list[np.ndarray]] = [[] for _ in self.pools]
        for j, column in enumerate(self.columns):
            rows[self._pool_of[j]].append(column[slots])
        return [np.concatenate(r, axis=1) if len(r) > 1 else r[0] for r in rows]

    def release(self, slots: np.ndarray) -> None:
        """Drops the frame references of the items at ``slots``."""
        if len(slots):
            for pool, rows in zip(self.pools, self.pool_rows(slots)):
                pool.release(rows)

    def add(self, leaves: Sequence[np.ndarray], inserted: int) -> tuple[list, int]:
        """Stores the frames of a batch about to be written at the next ring slots.

        Claims the frames already stored, releases the frames of the present
        items the batch overwrites, evicts the fewest oldest present items
        that make room (flagging them removed), then writes the new frames.

        Args:
          leaves: The batch's leaves (framed ones uint8 [n, *item shape]), n <= max_size.
          inserted: Items the storage wrote before the batch (its next key).
        Returns:
          ``(leaves, evicted)``: the leaves with int32 [n, k] entry indices at
          the framed positions, and how many items were evicted for room.
        Raises:
          ValueError: the batch's new frames exceed a pool even when every
            other frame is freed (nothing is changed then).
        """
        n = len(leaves[0])
        slots = np.arange(inserted, inserted + n) % self._max_size
        batches: list[list[np.ndarray]] = [[] for _ in self.pools]
        for j, position in enumerate(self.positions):
            pool = self.pools[self._pool_of[j]]
            batches[self._pool_of[j]].append(leaves[position].reshape(-1, *pool.frame_shape))
        claims = [pool.claim(np.concatenate(b) if len(b) > 1 else b[0]) for pool, b in zip(self.pools, batches)]
        if not all(pool.fits(claim) for pool, claim in zip(self.pools, claims)):
            for pool, claim in zip(self.pools, claims):
                pool.cancel(claim)
            raise ValueError(
                f"a batch of {n} items has more new frames ({[c.needed for c in claims]}) than the "
                f"frame pools hold ({[p.capacity for p in self.pools]}): insert smaller batches or "
                "raise frames_per_item"
            )
        self.release(slots[(slots < inserted) & ~self._removed[slots]])
        evicted = self._make_room(claims, self._oldest_present(inserted + n, inserted))
        if evicted.size:
            if not self.evictions:
                warnings.warn(
                    f"replay frame pool full: items are evicted early, so the table holds fewer than "
                    f"max_size={self._max_size}; raise frames_per_item (the agent config's "
                    "replay_frames_per_item; k for k-channel images)",
                    RuntimeWarning, stacklevel=3)
            self._removed[evicted] = True
            self.evictions += evicted.size
        self._evicted = evicted
        entries = [pool.commit(claim) for pool, claim in zip(self.pools, claims)]
        leaves = list(leaves)
        offsets = [0] * len(self.pools)
        for j, position in enumerate(self.positions):
            p, k = self._pool_of[j], self.columns[j].shape[1]
            leaves[position] = entries[p][offsets[p] : offsets[p] + n * k].reshape(n, k)
            offsets[p] += n * k
        return leaves, int(evicted.size)

    def _oldest_present(self, end: int, inserted: int) -> Iterator[np.ndarray]:
        """Slots of the present items a batch of keys up to ``end`` keeps, oldest first, in chunks."""
        key = max(self._cursor, end - self._max_size)
        while key < inserted:
            self._cursor = key  # The chunks before were evicted whole.
            slots = np.arange(key, min(key + _CHUNK, inserted)) % self._max_size
            yield slots[~self._removed[slots]]
            key += _CHUNK

    def _make_room(self, claims: list[_Claim], oldest: Iterator[np.ndarray]) -> np.ndarray:
        """Releases the fewest oldest items that leave every pool room for its claim's new frames."""
        evicted: list[np.ndarray] = []
        shortfall = [c.needed - p.num_free for p, c in zip(self.pools, claims)]
        for chunk in oldest if max(shortfall) > 0 else ():
            take = 0
            for pool, short, rows in zip(self.pools, shortfall, self.pool_rows(chunk)):
                if short > 0:
                    take = max(take, int(np.searchsorted(pool.freed_by_prefix(rows), short)) + 1)
            take = min(take, len(chunk))
            self.release(chunk[:take])
            evicted.append(chunk[:take])
            shortfall = [c.needed - p.num_free for p, c in zip(self.pools, claims)]
            if max(shortfall) <= 0:
                break
        return np.concatenate(evicted) if evicted else np.zeros(0, np.int64)

    def gather(self, leaves: list[np.ndarray]) -> list[np.ndarray]:
        """Replaces the gathered int32 [B, k] index rows in ``leaves`` by images [B, *item shape]."""
        for j, position in enumerate(self.positions):
            rows = leaves[position]
            leaves[position] = self.pools[self._pool_of[j]].gather(rows).reshape(len(rows), *self.shapes[j])
        return leaves

    def get_state(self, copy: bool = True) -> dict[str, Any]:
        """Each pool's ``get_state(copy)`` and the eviction count (the columns are storage leaves)."""
        return {"pools": [pool.get_state(copy) for pool in self.pools], "evictions": self.evictions}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores ``get_state`` output (after the storage restored its columns and flags).

        Raises:
          ValueError: the number of pools, a capacity or a frame shape differs.
        """
        if len(state["pools"]) != len(self.pools):
            raise ValueError(f"state has {len(state['pools'])} frame pools, this storage has {len(self.pools)}")
        for pool, pool_state in zip(self.pools, state["pools"]):
            pool.set_state(pool_state)
        self.evictions = int(state["evictions"])
        self._cursor = 0


def check_options(frames_per_item: float | None, reserve: int | None) -> None:
    """Raises ValueError unless frames_per_item is None or > 0 and reserve is None or >= 0."""
    if frames_per_item is not None and not frames_per_item > 0:
        raise ValueError(f"frames_per_item ({frames_per_item}) must be > 0")
    if reserve is not None and reserve < 0:
        raise ValueError(f"frame_pool_reserve ({reserve}) must be >= 0")
