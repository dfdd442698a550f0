"""Environment specs: the shapes, dtypes and bounds an agent is built against."""

from __future__ import annotations

from typing import Any, NamedTuple

import dm_env


class EnvironmentSpec(NamedTuple):
    """Full specification of the domains used by a given environment."""

    observations: Any
    actions: Any
    rewards: Any
    discounts: Any


def make_environment_spec(environment: dm_env.Environment) -> EnvironmentSpec:
    """Returns an ``EnvironmentSpec`` read off a ``dm_env.Environment``."""
    return EnvironmentSpec(
        observations=environment.observation_spec(),
        actions=environment.action_spec(),
        rewards=environment.reward_spec(),
        discounts=environment.discount_spec(),
    )
