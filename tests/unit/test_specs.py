"""Specs: narrowing float bounds never widens them."""

from __future__ import annotations

import numpy as np
import pytest

from distrl.specs import narrow_bounds


def test_float32_bounds_round_inwards_and_never_widen():
    low, high = narrow_bounds(
        np.array([-0.1, -1.0, -np.inf, -1e300]), np.array([0.1, 1.0, np.inf, 1e300])
    )
    assert low.dtype == high.dtype == np.float32
    # The nearest float32 to 0.1 is 0.10000000149 > 0.1: it must be stepped inside.
    assert np.float32(0.1).astype(np.float64) > 0.1
    assert low[0].astype(np.float64) >= -0.1 and high[0].astype(np.float64) <= 0.1
    assert high[0] == np.nextafter(np.float32(0.1), np.float32(0))  # the nearest one inside
    assert (low[1], high[1]) == (-1.0, 1.0)  # exact bounds are kept
    assert (low[2], high[2]) == (-np.inf, np.inf)
    assert high[3] == np.finfo(np.float32).max and low[3] == -np.finfo(np.float32).max
    with pytest.raises(ValueError, match="no float32"):
        narrow_bounds(0.1, 0.1)
