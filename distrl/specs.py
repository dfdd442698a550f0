"""Environment specs: the shapes, dtypes and bounds an agent is built against."""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence, Union

import dm_env
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
