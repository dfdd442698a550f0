"""The A2C builder: FIFO segment queue, trajectory adders, batched sampling actor, learner.

Data path. Each environment has its own ``TrajectoryAdder`` that cuts its
stream into segments of T = ``sequence_length`` steps (with each step's
behaviour ``policy_version`` in extras and the bootstrap observation) and
inserts every segment as soon as it is complete. Segments go into a FIFO
queue table (``Table.queue``): each is sampled exactly once, in order, and
the learner takes ``batch_size`` of them (default: ``envs_per_actor``) per
update.

Synchronous in the single-process mode. The N = ``envs_per_actor``
environments step in lockstep, so after every T vector steps each adder has
inserted exactly one segment, the queue holds N segments, one learner step
runs, and the actor loads the new weights before its next action: every
update uses only data from the current policy version (policy lag 0). With
``batch_size`` k * N an update uses the last k rounds (lag up to k - 1).
The queue holds ``batch_size + envs_per_actor`` segments, the most the
single-process mode can have waiting (fewer than ``batch_size`` before a
vector step, plus one per environment).

In the single-process mode ``run_local`` takes its vectorised path whenever
``envs_per_actor > 1``; with 1 the batched actor runs behind a
``SingleStreamActor`` in the plain ``EnvironmentLoop``, with the same data.
"""

from __future__ import annotations

from typing import Iterator

import torch

from distrl.adders.base import Adder
from distrl.adders.trajectory import TrajectoryAdder
from distrl.agents.a2c.actor import GreedyPolicy, SamplingPolicy
from distrl.agents.a2c.config import Config
from distrl.agents.a2c.learning import A2CLearner
from distrl.agents.a2c.networks import ActorCritic
from distrl.agents.actors import BatchedFeedForwardActor, FeedForwardActor, SingleStreamActor
from distrl.agents.builder import BatchedPolicy, Builder, Policy
from distrl.core import Actor, BatchedActor, Learner, VariableSource
from distrl.replay.client import ReplayClient, SampleBatch
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.variables.client import VariableClient

QUEUE_TABLE = "trajectories"


class A2CBuilder(Builder):
    """Wires A2C's parts from one ``Config`` (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.batch_size = config.learner_batch_size
        self.envs_per_actor = config.envs_per_actor

    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """One FIFO queue of segments; each segment is consumed exactly once."""
        return [Table.queue(QUEUE_TABLE, max_size=self.batch_size + self.envs_per_actor)]

    def make_adder(self, client: ReplayClient) -> Adder:
        """A trajectory adder inserting each T-step segment as soon as it is complete."""
        return TrajectoryAdder(client, sequence_length=self.config.sequence_length, max_batch_size=1)

    def make_policy(
        self, networks: ActorCritic, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """The mode of pi for evaluation; sampling from pi otherwise.

        A2C explores by sampling its own policy, so ``exploration`` is ignored.
        The sampling policy is also a ``BatchedPolicy``.
        """
        if evaluation:
            return GreedyPolicy(networks)
        return SamplingPolicy(networks, seed=seed)

    def _variable_client(self, networks: ActorCritic, variable_source: VariableSource | None) -> VariableClient | None:
        if variable_source is None:
            return None
        return VariableClient(variable_source, {"policy": networks.policy}, self.config.variable_update_period)

    def make_actor(
        self,
        policy: Policy,
        networks: ActorCritic,
        variable_source: VariableSource | None,
        adder: Adder | None,
    ) -> Actor:
        """Evaluation (no adder): a plain feed-forward actor. Training: the batched
        actor over one environment, so the adder records unclipped samples."""
        if adder is None:
            return FeedForwardActor(policy, None, self._variable_client(networks, variable_source))
        if not isinstance(policy, BatchedPolicy):
            raise TypeError(f"A2C training needs a BatchedPolicy (from make_policy), got {type(policy).__name__}")
        return SingleStreamActor(self.make_batched_actor(policy, networks, variable_source, [adder]))

    def make_batched_actor(
        self,
        policy: BatchedPolicy,
        networks: ActorCritic,
        variable_source: VariableSource | None,
        adders: list[Adder],
    ) -> BatchedActor:
        return BatchedFeedForwardActor(policy, adders, self._variable_client(networks, variable_source))

    def make_learner(
        self,
        networks: ActorCritic,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        return A2CLearner(networks, dataset, self.config, counter, logger, device)
