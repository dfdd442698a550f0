"""The column buffer both adders keep their formed items in until one insert."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from distrl.types import Nest
from distrl.utils.nests import stack_nests


class ColumnBuffer:
    """Items held field by field (one Python list per field) until ``take``.

    ``fields`` maps each field name, in order, to the numpy dtype of a
    scalar column (reward: float32, mask: bool, ...) or to None for a nest
    column (observation, action, extras), which ``take`` stacks with
    ``stack_nests``. Appending to lists and stacking once per insert is
    cheaper than writing each item into a preallocated batch, because the
    adder does not know a nest's leaf shapes until the first item arrives.
    """

    def __init__(self, fields: Mapping[str, np.dtype | type | None]) -> None:
        self._names = tuple(fields)
        self._dtypes = tuple(fields.values())
        self._columns: list[list[Any]] = [[] for _ in self._names]

    def __len__(self) -> int:
        return len(self._columns[0])

    def append(self, *values: Any) -> None:
        """Appends one item: a value per field, in the order of ``fields``."""
        for column, value in zip(self._columns, values):
            column.append(value)

    def extend(self, count: int, *values: Any) -> None:
        """Appends the same item ``count`` times (e.g. padding steps)."""
        for column, value in zip(self._columns, values):
            column.extend([value] * count)

    def last(self, name: str) -> Nest:
        """The most recent value of field ``name``; raises IndexError when empty."""
        return self._columns[self._names.index(name)][-1]

    def truncate(self, length: int) -> None:
        """Drops every item from position ``length`` on."""
        for column in self._columns:
            del column[length:]

    def get_state(self) -> dict[str, list]:
        """The buffered items, column by column (for checkpoints)."""
        return {name: list(column) for name, column in zip(self._names, self._columns)}

    def set_state(self, state: dict[str, list]) -> None:
        """Restores ``get_state`` output; raises KeyError for a missing field."""
        self._columns = [list(state[name]) for name in self._names]

    def take(self, leading_shape: tuple[int, ...] | None = None) -> dict[str, Nest]:
        """Returns ``{field: stacked column}`` and empties the buffer.

        Every leaf gets a leading axis of ``len(self)`` items, reshaped to
        ``leading_shape`` when given (e.g. ``(segments, T)``); scalar
        columns are arrays of their field's dtype.
        """
        taken: dict[str, Nest] = {}
        for name, dtype, column in zip(self._names, self._dtypes, self._columns):
            if dtype is None:
                taken[name] = stack_nests(column, leading_shape)
            else:
                array = np.asarray(column, dtype=dtype)
                taken[name] = array if leading_shape is None else array.reshape(leading_shape)
        self._columns = [[] for _ in self._names]
        return taken
