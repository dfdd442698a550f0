"""A vectorised sum tree: prefix-sum sampling over many non-negative values.

The tree is one float64 array laid out as an implicit binary heap: node 1 is
the root, node i has children 2i and 2i+1, and the ``capacity`` leaves start at
index ``2**depth`` (capacity rounded up to a power of two; the extra leaves
stay 0). Every operation works on a whole batch of leaves at once and loops
only over the ``depth`` levels (20 for a million leaves), never over items.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Batched set / total / prefix-sum search over ``capacity`` values.

    Args:
      capacity: Number of leaves (values), all 0 initially.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity ({capacity}) must be a positive integer")
        self._capacity = int(capacity)
        self._depth = max(1, int(np.ceil(np.log2(self._capacity))))
        self._first_leaf = 1 << self._depth
        self._nodes = np.zeros(2 * self._first_leaf, dtype=np.float64)

    @property
    def capacity(self) -> int:
        """Number of leaves."""
        return self._capacity

    @property
    def total(self) -> float:
        """Sum of all leaf values."""
        return float(self._nodes[1])

    @property
    def values(self) -> np.ndarray:
        """Read-only view of the leaf values."""
        view = self._nodes[self._first_leaf : self._first_leaf + self._capacity]
        view.flags.writeable = False
        return view

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ``indices``."""
        return self._nodes[self._first_leaf + np.asarray(indices)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Sets leaves and updates their ancestors, one vectorised pass per level.

        Duplicate indices are allowed (the last value wins, as in numpy
        assignment): a parent shared by several updated leaves is recomputed
        from its two children, so writing it more than once is harmless.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
            raise ValueError("sum tree values must be finite and non-negative")
        nodes = self._nodes
        index = self._first_leaf + np.asarray(indices, dtype=np.int64)
        nodes[index] = values
        for _ in range(self._depth):
            index >>= 1
            left = index << 1
            nodes[index] = nodes[left] + nodes[left + 1]

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Sets the contiguous leaves [start, start + len(values)).

        The common case (a batch of new items fills consecutive slots) needs
        no index arrays: at every level the ancestors of a contiguous range
        are a contiguous range, recomputed with two strided slices.
        """
        values = np.asarray(values, dtype=np.float64)
        if not values.size:
            return
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError("sum tree values must be finite and non-negative")
        if start < 0 or start + values.size > self._capacity:
            raise IndexError(f"leaves [{start}, {start + values.size}) outside [0, {self._capacity})")
        nodes = self._nodes
        low = self._first_leaf + start
        high = low + values.size  # Exclusive.
        nodes[low:high] = values
        for _ in range(self._depth):
            low >>= 1
            high = ((high - 1) >> 1) + 1
            nodes[low:high] = nodes[2 * low : 2 * high : 2] + nodes[2 * low + 1 : 2 * high : 2]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """Leaf index i for each target u with prefix(i) <= u < prefix(i) + value(i).

        ``prefix(i)`` is the sum of the leaves before i. Negative targets count
        as 0. The descent never enters a subtree whose sum is 0, so a zero leaf
        is never returned while the total is positive, even when float rounding
        puts a target at (or past) the end of the range: it then gets the last
        non-zero leaf.
        """
        children = self._nodes.reshape(-1, 2)  # Row i holds nodes 2i and 2i+1.
        u = np.clip(np.asarray(targets, dtype=np.float64), 0.0, None)
        index = np.ones(u.shape, dtype=np.int64)
        for _ in range(self._depth):
            pair = children[index]  # One gather per level for both children.
            left_sum = pair[:, 0]
            go_right = (u >= left_sum) & (pair[:, 1] > 0)
            u = u - left_sum * go_right
            index = (index << 1) + go_right
        return index - self._first_leaf

    def prefix_sums(self) -> np.ndarray:
        """Exclusive prefix sums of the leaves (for tests and diagnostics)."""
        values = self._nodes[self._first_leaf : self._first_leaf + self._capacity]
        return np.concatenate(([0.0], np.cumsum(values)[:-1]))

    def get_state(self) -> np.ndarray:
        """The leaf values (internal nodes are recomputed on restore)."""
        return self._nodes[self._first_leaf : self._first_leaf + self._capacity].copy()

    def set_state(self, leaves: np.ndarray) -> None:
        """Restores leaf values and rebuilds every internal node level by level."""
        leaves = np.asarray(leaves, dtype=np.float64)
        if leaves.shape != (self._capacity,):
            raise ValueError(f"state has {leaves.shape} leaves, this tree has ({self._capacity},)")
        self._nodes[:] = 0.0
        self._nodes[self._first_leaf : self._first_leaf + self._capacity] = leaves
        level = self._first_leaf
        while level > 1:
            children = self._nodes[level : 2 * level]
            self._nodes[level // 2 : level] = children[0::2] + children[1::2]
            level //= 2
