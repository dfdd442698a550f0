"""Plain data containers that flow between actors, adders, replay and learners.

All containers are NamedTuples of numpy arrays (or nested NamedTuples/dicts of
them) so they can be stored column-wise in preallocated replay storage and
mapped over with ``dm-tree``.
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

Nest = Any  # An array, or a (possibly nested) tuple / NamedTuple / dict of arrays.
Params = Any  # A mapping of parameter names to CPU numpy arrays.

T = TypeVar("T")


class Transition(NamedTuple):
    """One n-step transition as written by ``NStepTransitionAdder``.

    With k <= n the number of steps actually taken (k < n only at the end of
    an episode), ``reward`` is the discounted sum
    R = sum_{i<k} gamma**i * (d_t * ... * d_{t+i-1}) * r_{t+i}
    and ``discount`` is the product D = prod_{i<k} gamma * d_{t+i}, so the
    learner's bootstrapped target is simply R + D * V(next_observation).
    A termination has d = 0, so nothing is bootstrapped past it; a truncation
    (time limit) keeps d = 1 and bootstraps from the episode's final
    observation.
    ``extras`` holds per-step metadata such as ``policy_version``.
    """

    observation: Nest
    action: Nest
    reward: np.ndarray
    discount: np.ndarray
    next_observation: Nest
    extras: Nest = ()


class Trajectory(NamedTuple):
    """A fixed-length segment of T consecutive steps, as written by ``TrajectoryAdder``.

    Every field has a leading time axis of length T. ``discount[t]`` is the
    environment discount of step t (0 at a termination, 1 otherwise),
    ``last[t]`` is True when step t ended an episode (terminated or truncated),
    and ``next_observation[t]`` is the observation that followed step t; the
    last entry is the segment's bootstrap observation, and at a truncation the
    entry is the episode's final observation, so V(next_observation[t]) is the
    right bootstrap value in both cases. ``mask[t]`` is False for padding
    steps (only the final, partial segment of a run is padded).
    """

    observation: Nest
    action: Nest
    reward: np.ndarray
    discount: np.ndarray
    last: np.ndarray
    next_observation: Nest
    mask: np.ndarray
    extras: Nest = ()


class SampleBatch(NamedTuple):
    """A batch sampled from a replay table, as ``ReplayClient.sample`` returns it.

    ``keys`` (int64 [B]) are the items' replay keys, for priority updates;
    ``data`` is the stacked items (every leaf has a leading axis B);
    ``probabilities`` (float64 [B]) are the sampling probabilities P(i) and
    ``weights`` (float32 [B]) the importance weights (N P(i))^-beta divided
    by their batch maximum, all ones for uniform sampling (Schaul et al. 2016).
    """

    keys: np.ndarray
    data: Nest
    probabilities: np.ndarray
    weights: np.ndarray


class Versioned(NamedTuple, Generic[T]):
    """A value tagged with a monotonically increasing version (learner step count)."""

    version: int
    value: T
