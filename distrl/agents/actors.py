"""Feed-forward actors: one environment (``FeedForwardActor``) or N in lockstep
(``BatchedFeedForwardActor``), and ``SingleStreamActor`` to run a batched
actor as a plain ``Actor`` for one environment."""

from __future__ import annotations

from typing import Any

import dm_env
import numpy as np

from distrl.adders.base import Adder
from distrl.utils.nests import index_nest, stack_nests
from distrl.agents.builder import BatchedPolicy, Policy
from distrl.core import Actor, BatchedActor
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


class BatchedFeedForwardActor(BatchedActor):
    """Acts for N environments with one batched policy call per vector step.

    Environment i writes through ``adders[i]``. The adder records the
    policy's ``behaviour_actions[i]`` (not the possibly clipped action the
    environment received) with ``extras['policy_version']``, the version of
    the weights that chose it (one extras dict per vector step, shared by the
    N adders).
    """

    def __init__(
        self,
        policy: BatchedPolicy,
        adders: list[Adder],
        variable_client: VariableClient | None = None,
    ) -> None:
        self._policy = policy
        self._adders = list(adders)
        self._variable_client = variable_client
        self._behaviour_actions: Any = None
        self._extras = {"policy_version": np.int64(self.policy_version)}

    @property
    def num_envs(self) -> int:
        return len(self._adders)

    @property
    def policy_version(self) -> int:
        """Version of the weights in use (-1 when there is no variable source)."""
        return -1 if self._variable_client is None else self._variable_client.version

    def select_actions(self, observations: Any) -> Any:
        actions, self._behaviour_actions = self._policy.select_actions(observations)
        self._extras = {"policy_version": np.int64(self.policy_version)}
        return actions

    def observe_first(self, index: int, timestep: dm_env.TimeStep) -> None:
        self._policy.reset_env(index)
        self._adders[index].add_first(timestep)

    def observe(self, index: int, action: Any, next_timestep: dm_env.TimeStep) -> None:
        self._adders[index].add(index_nest(self._behaviour_actions, index), next_timestep, extras=self._extras)

    def update(self, wait: bool = False) -> None:
        if self._variable_client is not None:
            self._variable_client.update(wait)

    def flush(self) -> None:
        """Inserts whatever the adders have buffered (end of a run)."""
        for adder in self._adders:
            adder.flush()


class SingleStreamActor(Actor):
    """Runs a ``BatchedActor`` built for one environment as a plain ``Actor``.

    Observations gain a leading axis of length 1 and the action loses it, so
    an agent that only implements batched acting also runs in
    ``EnvironmentLoop`` (e.g. with ``envs_per_actor == 1``).
    """

    def __init__(self, actor: BatchedActor) -> None:
        self._actor = actor

    def select_action(self, observation: Any) -> Any:
        return index_nest(self._actor.select_actions(stack_nests([observation])), 0)

    def observe_first(self, timestep: dm_env.TimeStep) -> None:
        self._actor.observe_first(0, timestep)

    def observe(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
        self._actor.observe(0, action, next_timestep)

    def update(self, wait: bool = False) -> None:
        self._actor.update(wait)
