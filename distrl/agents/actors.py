"""The feed-forward actor shared by value-based and deterministic-policy agents."""

from __future__ import annotations

from typing import Any

import dm_env
import numpy as np

from distrl.adders.base import Adder
from distrl.agents.builder import Policy
from distrl.core import Actor
from distrl.variables.client import VariableClient


class FeedForwardActor(Actor):
    """Acts with a stateless policy, writes through an adder, pulls weights by version.

    Every transition carries ``extras['policy_version']``: the learner step of
    the weights that chose its first action, so staleness can be measured.
    """

    def __init__(
        self, policy: Policy, adder: Adder | None = None, variable_client: VariableClient | None = None
    ) -> None:
        self._policy = policy
        self._adder = adder
        self._variable_client = variable_client

    @property
    def policy_version(self) -> int:
        """Version of the weights in use (-1 when there is no variable source)."""
        return -1 if self._variable_client is None else self._variable_client.version

    def select_action(self, observation: Any) -> Any:
        return self._policy(observation)

    def observe_first(self, timestep: dm_env.TimeStep) -> None:
        self._policy.reset()
        if self._adder is not None:
            self._adder.add_first(timestep)

    def observe(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
        if self._adder is not None:
            extras = {"policy_version": np.int64(self.policy_version)}
            self._adder.add(action, next_timestep, extras=extras)

    def update(self, wait: bool = False) -> None:
        if self._variable_client is not None:
            self._variable_client.update(wait)

    def flush(self) -> None:
        """Inserts whatever the adder has buffered (end of a run)."""
        if self._adder is not None:
            self._adder.flush()
