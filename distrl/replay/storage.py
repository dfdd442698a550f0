"""Column-wise ring-buffer storage for replay items.

One preallocated numpy array per leaf of the item nest, allocated on the first
insert from the shapes and dtypes of that batch (the storage *signature*).
Items never exist as Python objects: a batch of n items is n rows written by
slice assignment, and a sampled batch is one integer-array gather per leaf.

Every item gets a key, its global insertion id (0, 1, 2, ...), and lives at
slot ``key % max_size``. Writing always goes to the next ring position, so the
item that is overwritten is the one written ``max_size`` inserts earlier: that
is FIFO eviction, and it makes key lookups arithmetic: with I items inserted
so far, key k is still stored iff I - max_size <= k < I and it was not
removed. Items can be removed before they are overwritten (a queue pops them,
``max_times_sampled`` retires them); a per-slot flag marks those, and
``size`` counts the items present. The reverse map is arithmetic too: slot s
last held key I - 1 - ((I - 1 - s) mod max_size), so no per-slot key is
stored (one write less per insert; about the cost of a gather per sample).

``deduplicate_frames`` stores uint8 image leaves as indices into shared,
content-addressed frame pools (``frames.py``, ``frame_columns.py``).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tree

from distrl.replay.frame_columns import FrameColumns, check_options
from distrl.types import Nest
from distrl.utils.nests import make_flattener, make_unflattener

_MAX_BATCH_SIGNATURES = 32  # Batch shapes whose full leaf signatures are cached for the checks.

_DESCRIBE = operator.attrgetter("__class__", "dtype", "shape")
"""A leaf's ``(type, dtype, shape)``, read in C; a list of them is compared with
a cached batch signature in one ``==`` (dtypes of the same kind are shared
objects, so the comparison is mostly identity checks)."""



class ArrayStorage:
    """A FIFO ring buffer of nests, stored as one numpy array per leaf.

    Args:
      max_size: Capacity in items; the oldest item is overwritten beyond it.
      deduplicate_frames: Keep each distinct frame of uint8 image leaves once
        (``FrameColumns``); ``get`` returns the same arrays either way.
      frames_per_item, frame_pool_reserve: The frame pools' budget (``FrameColumns``).
    """

    def __init__(self, max_size: int, deduplicate_frames: bool = False, frames_per_item: float | None = None,
                 frame_pool_reserve: int | None = None):
        if max_size < 1:
            raise ValueError(f"max_size ({max_size}) must be a positive integer")
        check_options(frames_per_item, frame_pool_reserve)
        self._frame_options = (deduplicate_frames, frames_per_item, frame_pool_reserve)
        self.frames: FrameColumns | None = None  # The image leaves, once allocated with deduplication.
        self._max_size = int(max_size)
        self._removed = np.zeros(self._max_size, dtype=bool)  # Slot's item removed early.
        # Slices of this read-only 0..max_size-1 are the slots of unwrapped batches
        # (a view costs a fifth of a fresh np.arange).
        self._slot_range = np.arange(self._max_size, dtype=np.int64)
        self._slot_range.flags.writeable = False
        self._num_removed = 0  # Slots flagged in ``_removed``.
        self._inserted = 0  # Total items ever written; also the next key.
        self._evictions = 0
        self._structure: Nest | None = None
        self._arrays: list[np.ndarray] = []
        self._signature: list[tuple[np.dtype, tuple[int, ...]]] = []
        # Keyed by the first leaf's full shape: the ``_DESCRIBE`` of every leaf of a valid batch.
        self._batch_signatures: dict[tuple[int, ...], list[tuple[type, np.dtype, tuple[int, ...]]]] = {}
        self._fast_flatten: Callable[[Nest], Sequence[Any] | None] | None = None
        self._unflatten: Callable[[Sequence[Any]], Nest] | None = None

    @property
    def max_size(self) -> int:
        """Capacity in items."""
        return self._max_size

    @property
    def size(self) -> int:
        """Number of items present now."""
        return min(self._inserted, self._max_size) - self._num_removed

    @property
    def inserted(self) -> int:
        """Number of items ever written (the key the next item will get)."""
        return self._inserted

    @property
    def evictions(self) -> int:
        """Number of items overwritten by newer ones while still present, or
        evicted early to make room for new frames (``FrameColumns``)."""
        return self._evictions

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns, the frame pools and their hash indices."""
        columns = sum(array.nbytes for array in self._arrays) + self._removed.nbytes + self._slot_range.nbytes
        return columns + (self.frames.nbytes if self.frames is not None else 0)

    @property
    def allocated(self) -> bool:
        """True once the first insert has fixed the signature and allocated the arrays."""
        return self._structure is not None

    @property
    def signature(self) -> Nest | None:
        """The item nest with ``(dtype, shape)`` leaves, None before the first insert."""
        if self._structure is None:
            return None
        return tree.unflatten_as(self._structure, [(d, s) for d, s in self._signature])

    def _allocate(self, items: Nest, leaves: list[np.ndarray]) -> None:
        """Fixes the signature from the first (checked) batch and preallocates."""
        self._signature = [(leaf.dtype, leaf.shape[1:]) for leaf in leaves]
        self._structure = tree.map_structure(lambda leaf: np.asarray(leaf)[:0], items)
        if self._frame_options[0]:
            self.frames = FrameColumns(self._max_size, self._signature, self._removed, *self._frame_options[1:])
        columns = dict(zip(self.frames.positions, self.frames.columns)) if self.frames else {}
        self._arrays = [columns[i] if i in columns else np.empty((self._max_size, *s), dtype=d)
                        for i, (d, s) in enumerate(self._signature)]
        if self.frames:  # The plain path stays free of frame checks.
            self.add_leaves = self._add_framed_leaves  # type: ignore[method-assign]
        else:
            self.frames = None
        self._unflatten = make_unflattener(self._structure)
        self._fast_flatten = make_flattener(self._structure)

    def flatten(self, items: Nest) -> Sequence[np.ndarray]:
        """Flattens a batch of items and checks it against the signature.

        Before the first insert only the batch axis is checked (every leaf has
        one, of the same size); that batch then defines the signature. Leaves
        are matched by position: the nest structure is checked by leaf count,
        and every leaf's dtype and item shape must match exactly (no casts).
        A batch of ndarrays whose shapes were accepted before is checked with
        one list comparison; anything else goes through the full check.

        Raises:
          ValueError: naming the leaf path, when the nest structure, a dtype,
            an item shape or a batch size does not match.
        """
        fast_flatten = self._fast_flatten
        leaves = fast_flatten(items) if fast_flatten is not None else None
        if leaves is None:
            leaves = tree.flatten(items)
        try:
            # Fast path: ndarray leaves exactly as in a batch shape seen before.
            described = list(map(_DESCRIBE, leaves))
            if described == self._batch_signatures[described[0][2]]:
                return leaves
        except (AttributeError, IndexError, KeyError):
            pass  # A leaf that is no array, no leaves, or a new batch shape: check in full.
        return self._flatten_checked(items, [np.asarray(leaf) for leaf in tree.flatten(items)])

    def _flatten_checked(self, items: Nest, leaves: list[np.ndarray]) -> list[np.ndarray]:
        """The general check behind ``flatten``: caches a valid batch shape, names the bad leaf."""
        if not leaves:
            raise ValueError("items have no array leaves")
        signature = self._signature or [(leaf.dtype, leaf.shape[1:]) for leaf in leaves]
        if len(leaves) != len(signature):
            raise ValueError(
                f"items have {len(leaves)} leaves, the storage signature has "
                f"{len(signature)}: {self.signature}"
            )
        if not leaves[0].ndim:
            _raise_mismatch(items, leaves, signature)
        n = leaves[0].shape[0]
        expected = [(dtype, (n, *shape)) for dtype, shape in signature]
        for leaf, (dtype, shape) in zip(leaves, expected):
            if leaf.shape != shape or leaf.dtype != dtype:
                _raise_mismatch(items, leaves, signature)
        if self._signature:
            if len(self._batch_signatures) >= _MAX_BATCH_SIGNATURES:
                self._batch_signatures.clear()
            described = [(np.ndarray, dtype, shape) for dtype, shape in expected]
            self._batch_signatures[expected[0][1]] = described
        return leaves

    def add(self, items: Nest) -> np.ndarray:
        """Writes a batch of items (every leaf has a leading batch axis).

        Items that were still present at the overwritten slots are evicted.

        Returns:
          int64 slots the items were written to, in insertion order.
        Raises:
          ValueError: on a signature mismatch, or when the batch is larger than
            ``max_size`` (it would overwrite itself).
        """
        return self.add_leaves(items, self.flatten(items))[0]

    def add_leaves(self, items: Nest, leaves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        """``add`` for a batch already flattened and checked by ``flatten``.

        Returns:
          ``(slots, keys, evicted)``: int64 slots and keys of the written
          items in insertion order (``slots`` may be a read-only view), and
          the number of items this batch evicted.
        """
        if self._structure is None:
            self._allocate(items, leaves)
            if self.frames is not None:
                return self.add_leaves(items, leaves)  # ``_add_framed_leaves`` from now on.
        n = leaves[0].shape[0]
        max_size = self._max_size
        if n > max_size:
            raise ValueError(f"cannot insert a batch of {n} items into a storage of max_size {max_size}")
        inserted = self._inserted
        start = inserted % max_size
        stop = start + n
        keys = np.arange(inserted, inserted + n, dtype=np.int64)
        if stop <= max_size:
            rows = slice(start, stop)  # One slice object for every leaf.
            for array, leaf in zip(self._arrays, leaves):
                array[rows] = leaf
            slots = self._slot_range[rows]
        else:
            split = max_size - start
            for array, leaf in zip(self._arrays, leaves):
                array[start:] = leaf[:split]
                array[: n - split] = leaf[split:]
            slots = keys % max_size
        # Slots of this batch written before: their items are evicted unless already removed.
        evicted = n if inserted >= max_size else max(0, inserted + n - max_size)
        if self._num_removed:
            removed = self._removed[rows] if stop <= max_size else self._removed[slots]
            refilled = int(np.count_nonzero(removed))
            self._removed[slots] = False
            self._num_removed -= refilled
            evicted -= refilled
        self._inserted = inserted + n
        self._evictions += evicted
        return slots, keys, evicted

    def _add_framed_leaves(self, items: Nest, leaves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        """``add_leaves`` with image leaves: frames into the pools, entry indices
        into the ring; items evicted early for frame room count as evicted."""
        early = 0
        if len(leaves[0]) <= self._max_size:  # Larger batches raise below.
            leaves, early = self.frames.add(leaves, self._inserted)
            self._num_removed += early
            self._evictions += early
        slots, keys, evicted = ArrayStorage.add_leaves(self, items, leaves)
        return slots, keys, evicted + early

    def get(self, slots: np.ndarray) -> Nest:
        """Gathers the items at ``slots`` into one batched nest (copies).

        ``ndarray.take`` along axis 0 is several times faster than ``array[slots]``
        for leaves with item dimensions (numpy's general fancy-indexing path).
        """
        if self._unflatten is None:
            raise ValueError("storage is empty: nothing has been inserted yet")
        leaves = [array.take(slots, axis=0) for array in self._arrays]
        return self._unflatten(leaves if self.frames is None else self.frames.gather(leaves))

    def keys(self, slots: np.ndarray) -> np.ndarray:
        """Keys of the items last written at ``slots`` (-1 for slots never written)."""
        slots = np.asarray(slots, dtype=np.int64)
        last = self._inserted - 1
        keys = last - (last - slots) % self._max_size
        if self._inserted < self._max_size:
            keys[slots > last] = -1
        return keys

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps keys to slots.

        Returns:
          ``(slots, present)``: the slot of each key and a boolean mask that is
          False for keys whose item has been evicted or removed (or never existed).
        """
        keys = np.asarray(keys, dtype=np.int64)
        slots = keys % self._max_size
        present = (keys >= max(0, self._inserted - self._max_size)) & (keys < self._inserted)
        if self._num_removed:
            present &= ~self._removed[slots]
        return slots, present

    def remove(self, slots: np.ndarray) -> int:
        """Removes the items at ``slots`` (duplicates and empty slots are ignored).

        Returns:
          The number of items actually removed.
        """
        slots = np.unique(np.asarray(slots, dtype=np.int64))
        held = slots[(slots < self._inserted) & ~self._removed[slots]]
        if self.frames is not None:
            self.frames.release(held)
        self._removed[held] = True
        self._num_removed += held.size
        return int(held.size)

    def get_state(self, copy: bool = True) -> dict[str, Any]:
        """Arrays (the written part only) and counters, for checkpoints.

        ``copy=False`` returns views of the live arrays instead of copies, so
        a checkpoint of a large table needs no second copy in memory; the
        caller must then write them before the storage changes (the table
        holds its lock meanwhile).
        """
        filled = min(self._inserted, self._max_size)
        take = np.copy if copy else (lambda array: array)
        return {
            "max_size": self._max_size,
            "structure": self._structure,
            "leaves": [take(array[:filled]) for array in self._arrays],
            "removed": take(self._removed),
            "inserted": self._inserted,
            "evictions": self._evictions,
            "frames": self.frames.get_state(copy) if self.frames is not None else None,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a state from ``get_state`` into a storage of the same max_size."""
        if state["max_size"] != self._max_size:
            raise ValueError(
                f"state has max_size {state['max_size']}, this storage has {self._max_size}"
            )
        self.__dict__.pop("add_leaves", None)
        self.__init__(self._max_size, *self._frame_options)
        structure = state["structure"]
        if structure is not None:
            self._allocate(structure, [np.asarray(leaf) for leaf in tree.flatten(structure)])
            if (state.get("frames") is None) != (self.frames is None):
                raise ValueError("state and storage differ in deduplicated image leaves")
            for array, leaf in zip(self._arrays, state["leaves"]):
                array[: len(leaf)] = leaf
            if self.frames is not None:
                self.frames.set_state(state["frames"])
        self._removed[:] = state["removed"]
        self._num_removed = int(np.count_nonzero(self._removed))
        self._inserted = int(state["inserted"])
        self._evictions = int(state["evictions"])


def _leaf_paths(items: Nest) -> list[str]:
    """Readable paths (``observation``, ``extras/policy_version``) of every leaf."""
    return ["/".join(str(p) for p in path) or "<root>" for path, _ in tree.flatten_with_path(items)]


def _raise_mismatch(
    items: Nest, leaves: list[np.ndarray], signature: list[tuple[np.dtype, tuple[int, ...]]]
) -> None:
    """Raises a ValueError naming the first leaf that does not fit ``signature``."""
    batch = leaves[0].shape[:1]
    for path, leaf, (dtype, shape) in zip(_leaf_paths(items), leaves, signature):
        if leaf.ndim == 0:
            raise ValueError(f"leaf {path} is a scalar; every leaf needs a leading batch axis")
        if leaf.dtype != dtype:
            raise ValueError(f"leaf {path} has dtype {leaf.dtype}, storage expects {dtype}")
        if leaf.shape[1:] != shape:
            raise ValueError(
                f"leaf {path} has item shape {leaf.shape[1:]} (batch shape {leaf.shape}), "
                f"storage expects {shape}"
            )
        if leaf.shape[:1] != batch:
            raise ValueError(f"leaf {path} has batch size {leaf.shape[0]}, the first leaf has {batch[0]}")
    raise ValueError(f"items do not match the storage signature {signature}")
