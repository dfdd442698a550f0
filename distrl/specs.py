"""Environment specs: the shapes, dtypes and bounds an agent is built against."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence, Union

import dm_env
import numpy as np
from dm_env import specs

#: A spec of one value or of a nest of values: a ``dm_env.specs.Array`` (or its
#: subclasses ``BoundedArray``, ``DiscreteArray``), or a dict, list or tuple of specs.
SpecNest = Union[specs.Array, Mapping[str, "SpecNest"], Sequence["SpecNest"]]


class EnvironmentSpec(NamedTuple):
    """Full specification of the domains used by a given environment (Acme's ``EnvironmentSpec``).

    ``observations`` and ``actions`` may be nests; the agents here act on a
    single action array (``DiscreteArray`` for DQN and categorical A2C,
    ``BoundedArray`` for DDPG and Gaussian A2C). ``rewards`` is a scalar
    ``Array`` and ``discounts`` a scalar ``BoundedArray`` in [0, 1].
    """

    observations: SpecNest
    actions: SpecNest
    rewards: specs.Array
    discounts: specs.BoundedArray


def make_environment_spec(environment: dm_env.Environment) -> EnvironmentSpec:
    """Returns an ``EnvironmentSpec`` read off a ``dm_env.Environment``."""
    return EnvironmentSpec(
        observations=environment.observation_spec(),
        actions=environment.action_spec(),
        rewards=environment.reward_spec(),
        discounts=environment.discount_spec(),
    )


def narrow_bounds(low: Any, high: Any, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Bounds cast to a narrower float ``dtype`` without ever widening them.

    A float64 bound rounded to the nearest float32 may move outwards (0.1
    becomes 0.10000000149), and an action clipped to it then lies outside the
    environment's own space (gym#1744, ray#23074). Here a bound the narrow
    dtype cannot represent exactly is rounded towards the interior
    (``np.nextafter``): the result satisfies ``low_narrow >= low`` and
    ``high_narrow <= high`` as numbers. Infinite bounds stay infinite; finite
    bounds beyond the narrow range become its largest finite value.

    Returns ``(low, high)`` arrays of ``dtype`` with the inputs' shapes; raises
    ValueError for NaN bounds and when no value of ``dtype`` lies between some
    pair of bounds.
    """
    dtype = np.dtype(dtype)
    low64 = np.asarray(low, dtype=np.float64)
    high64 = np.asarray(high, dtype=np.float64)
    if np.isnan(low64).any() or np.isnan(high64).any():
        raise ValueError(f"bounds [{low64}, {high64}] contain NaN")
    with np.errstate(over="ignore"):  # Out-of-range finite bounds overflow to +-inf first.
        narrow_low = low64.astype(dtype)
        narrow_high = high64.astype(dtype)
    narrow_low = np.where(narrow_low.astype(np.float64) < low64, np.nextafter(narrow_low, dtype.type(np.inf)),
                          narrow_low).astype(dtype)
    narrow_high = np.where(narrow_high.astype(np.float64) > high64,
                           np.nextafter(narrow_high, dtype.type(-np.inf)), narrow_high).astype(dtype)
    if np.any(narrow_low > narrow_high):
        raise ValueError(f"no {dtype} value lies within the bounds [{low64}, {high64}]")
    return narrow_low, narrow_high
