"""Nest helpers: copies that cannot alias, stacking and indexing, batch lengths and concatenation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from distrl.utils.nests import (
    concatenate_batches,
    copy_nest,
    index_nest,
    stack_nests,
    stacked_length,
    zeros_like_nest,
)


class Pair(NamedTuple):
    image: np.ndarray
    extras: dict


def nest(value: float) -> Pair:
    return Pair(np.full((2, 2), value, np.float32), {"version": np.int64(value), "flag": np.array(True)})


def test_copy_nest_cannot_be_changed_through_the_original():
    original = nest(1.0)
    copied = copy_nest(original)
    original.image[:] = 5.0
    assert copied.image[0, 0] == 1.0 and isinstance(copied, Pair)
    array = np.zeros(3)
    assert copy_nest(array) is not array
    assert copy_nest(np.float32(2.0)) == 2.0


def test_stack_then_index_gives_each_item_back_with_its_structure():
    stacked = stack_nests([nest(0.0), nest(1.0), nest(2.0)])
    assert stacked.image.shape == (3, 2, 2) and stacked.extras["version"].tolist() == [0, 1, 2]
    item = index_nest(stacked, 1)
    assert isinstance(item, Pair) and item.image[0, 0] == 1.0 and item.extras["version"] == 1
    assert stack_nests([(), ()]) == ()
    assert stack_nests([{"v": np.int64(1)}, {"v": np.int64(2)}])["v"].tolist() == [1, 2]


def test_stack_with_a_leading_shape_and_zeros_like():
    stacked = stack_nests([nest(float(i)) for i in range(6)], leading_shape=(2, 3))
    assert stacked.image.shape == (2, 3, 2, 2) and stacked.extras["version"][1, 2] == 5
    zeros = zeros_like_nest(nest(3.0))
    assert zeros.image.dtype == np.float32 and not zeros.image.any() and zeros.extras["version"] == 0


def test_stack_rejects_leaves_of_different_shapes():
    with pytest.raises(ValueError):
        stack_nests([np.zeros(2), np.zeros(3)])


def test_stacked_length_and_concatenation_keep_order_and_priorities():
    first, second = stack_nests([nest(0.0), nest(1.0)]), stack_nests([nest(2.0)])
    assert stacked_length(first) == 2 and stacked_length({"b": np.zeros(4), "a": np.zeros(4)}) == 4
    merged, priorities = concatenate_batches([first, second], [np.array([1.0, 2.0]), np.array([3.0])])
    assert merged.extras["version"].tolist() == [0, 1, 2] and priorities.tolist() == [1.0, 2.0, 3.0]
    merged, priorities = concatenate_batches([first, second], [None, None])
    assert stacked_length(merged) == 3 and priorities is None
    assert concatenate_batches([first], [None])[0] is first
