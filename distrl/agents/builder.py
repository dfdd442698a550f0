"""The Builder interface: how an agent turns specs and networks into components.

The runtime (single process or Ray) asks the builder for each piece and wires
them together; the builder never knows which runtime is calling it.
"""

from __future__ import annotations

import abc
from typing import Any, Iterator

import torch

from distrl.adders.base import Adder
from distrl.core import Actor, Learner, VariableSource
from distrl.replay.client import ReplayClient, SampleBatch
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger


class Policy(abc.ABC):
    """Maps one observation to one action; may keep per-episode state (noise)."""

    @abc.abstractmethod
    def __call__(self, observation: Any) -> Any:
        """Returns the action for a single observation."""

    def reset(self) -> None:
        """Called at the start of every episode (resets exploration noise)."""


class Builder(abc.ABC):
    """Creates an agent's replay tables, adder, actor, learner and policies."""

    #: Items per learner batch (transitions, or segments for on-policy agents).
    batch_size: int

    @abc.abstractmethod
    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """Returns the agent's replay tables; the first one feeds the learner."""

    @abc.abstractmethod
    def make_adder(self, client: ReplayClient) -> Adder:
        """Returns the adder an actor writes through."""

    @abc.abstractmethod
    def make_policy(
        self, networks: Any, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """Returns an acting policy over ``networks``.

        ``evaluation`` selects the greedy/deterministic policy; ``exploration``
        overrides the exploration level (epsilon for DQN, noise scale for
        DDPG), which the distributed runtime sets per actor.
        """

    @abc.abstractmethod
    def make_actor(
        self, policy: Policy, networks: Any, variable_source: VariableSource | None, adder: Adder | None
    ) -> Actor:
        """Returns an actor running ``policy`` whose ``networks`` follow ``variable_source``."""

    @abc.abstractmethod
    def make_learner(
        self,
        networks: Any,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        """Returns the learner consuming ``dataset`` (one batch per ``step()``)."""
