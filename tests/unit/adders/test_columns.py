"""The column buffer both adders keep their items in."""

from __future__ import annotations

import numpy as np

from distrl.adders.columns import ColumnBuffer


def test_take_stacks_nest_columns_and_casts_scalar_columns_then_empties():
    buffer = ColumnBuffer({"observation": None, "reward": np.float32, "last": bool})
    for t in range(6):
        buffer.append(np.full(2, t, np.float64), float(t), t % 3 == 2)
    assert len(buffer) == 6 and buffer.last("reward") == 5.0
    taken = buffer.take(leading_shape=(2, 3))
    assert taken["observation"].shape == (2, 3, 2) and taken["observation"][1, 0, 0] == 3
    assert taken["reward"].dtype == np.float32 and taken["reward"].shape == (2, 3)
    assert taken["last"].tolist() == [[False, False, True], [False, False, True]]
    assert len(buffer) == 0


def test_extend_and_truncate():
    buffer = ColumnBuffer({"observation": None, "mask": bool})
    buffer.append(np.ones(1), True)
    buffer.extend(3, np.zeros(1), False)
    assert len(buffer) == 4
    buffer.truncate(2)
    assert buffer.take()["mask"].tolist() == [True, False]
