"""The A2C builder: FIFO segment queue, trajectory adders, batched sampling actor, learner.

Data path. Each environment has its own ``TrajectoryAdder`` that cuts its
stream into segments of T = ``sequence_length`` steps (with each step's
behaviour ``policy_version`` in extras and the bootstrap observation). The
environments of one actor step in lockstep, so every T vector steps each
adder completes one segment: a round of ``envs_per_actor`` segments, which
the adders insert as one call through a shared ``GroupedInsertClient``. The
table is a FIFO queue (``Table.queue``): each segment is sampled exactly
once, in order.

Synchronous by default (``max_policy_lag`` 0). The learner's batch is one
round from every actor (``envs_per_actor`` x actors segments, the runtime
tells the builder the number of actors through ``with_num_actors``); after
each round an actor waits for the weights that round trains
(``SynchronousActor``), so every update uses only data of the current
weights. In the single-process mode that wait is free: after every T vector
steps the queue holds one round, one learner step runs and the actor loads
the new weights before its next action. With a ``max_policy_lag`` L > 0 (or
None) actors never wait, and the learner drops segments whose weights trail
its own by more than L updates (``A2CLearner``).

The queue holds ``batch_size + envs_per_actor`` segments: a batch plus the
one extra round that a restarted actor can add.

In the single-process mode ``run_local`` takes its vectorised path whenever
``envs_per_actor > 1``; with 1 the batched actor runs behind a
``SingleStreamActor`` in the plain ``EnvironmentLoop``, with the same data.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from distrl.adders.base import Adder
from distrl.adders.trajectory import TrajectoryAdder
from distrl.agents.a2c.actor import GreedyPolicy, SamplingPolicy, SynchronousActor
from distrl.agents.a2c.config import Config
from distrl.agents.a2c.learning import A2CLearner
from distrl.agents.a2c.networks import ActorCritic
from distrl.agents.actors import BatchedFeedForwardActor, FeedForwardActor, SingleStreamActor
from distrl.agents.builder import BatchedPolicy, Builder, Policy
from distrl.core import Actor, BatchedActor, Learner, VariableSource
from distrl.replay.client import GroupedInsertClient, ReplayClient
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.types import SampleBatch
from distrl.utils.config import require
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.variables.client import VariableClient

QUEUE_TABLE = "trajectories"


class A2CBuilder(Builder):
    """Wires A2C's parts from one ``Config`` (see the module docstring); actors pull ``policy``.

    Every actor explores the same way, by sampling its policy, so
    ``actor_exploration`` keeps the default (None for every actor).
    """

    variable_names = ("policy",)

    def __init__(self, config: Config, num_actors: int = 1) -> None:
        per_round = config.envs_per_actor * num_actors
        if config.max_policy_lag == 0:
            require(config.batch_size in (None, per_round), "A2C config", "batch_size", config.batch_size,
                    f"be None (one round from each of the {num_actors} actors: {per_round} segments) when "
                    f"max_policy_lag is 0; other batches mix weight versions")
        self.config = config
        self.num_actors = num_actors
        self.batch_size = per_round if config.batch_size is None else config.batch_size
        self.envs_per_actor = config.envs_per_actor
        self.synchronous = config.max_policy_lag == 0
        self.max_policy_lag = config.max_policy_lag

    def with_num_actors(self, num_actors: int) -> "A2CBuilder":
        """The builder with the learner's batch spanning ``num_actors`` actors' rounds."""
        return A2CBuilder(self.config, num_actors)

    def check_budget(self, max_env_steps: int) -> None:
        """Refuses advantage normalisation over a batch of one advantage (``(A - mean) / std``
        is 0 for it, so the policy loss is 0 at every update and the policy never moves)
        and a budget shorter than one learner batch. Raises ``ConfigError`` naming the fields."""
        config = self.config
        advantages = self.batch_size * config.sequence_length
        require(not (config.normalize_advantages and advantages == 1), "A2C config", "normalize_advantages",
                config.normalize_advantages,
                f"be false when a batch holds one advantage (batch of {self.batch_size} segment from "
                f"{self.num_actors} actor(s) x envs_per_actor {config.envs_per_actor}, sequence_length "
                f"{config.sequence_length}): a standardised single advantage is 0 and the policy never learns; "
                f"raise envs_per_actor or sequence_length, or turn normalisation off")
        require(advantages <= max_env_steps, "A2C config", "sequence_length", config.sequence_length,
                f"fit one learner batch of {self.batch_size} segments x sequence_length env steps "
                f"({advantages}) into max_env_steps ({max_env_steps})")

    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """One FIFO queue of segments; each segment is consumed exactly once."""
        return [Table.queue(QUEUE_TABLE, max_size=self.batch_size + self.envs_per_actor)]

    def make_adder(self, client: ReplayClient, networks: Any = None) -> Adder:
        """A trajectory adder inserting each T-step segment as soon as it is complete (``networks`` unused)."""
        return TrajectoryAdder(client, sequence_length=self.config.sequence_length, max_batch_size=1)

    def make_adders(self, client: ReplayClient, num_envs: int, networks: Any = None) -> list[Adder]:
        """One trajectory adder per environment, all inserting through one
        ``GroupedInsertClient``: a whole round per insert call."""
        grouped = GroupedInsertClient(client, items_per_insert=num_envs)
        return [self.make_adder(grouped) for _ in range(num_envs)]

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
        variable_client = self._variable_client(networks, variable_source)
        if self.synchronous and variable_client is not None:
            return SynchronousActor(policy, adders, variable_client, round_length=self.config.sequence_length)
        return BatchedFeedForwardActor(policy, adders, variable_client)

    def make_learner(
        self,
        networks: ActorCritic,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        return A2CLearner(networks, dataset, self.config, counter, logger, device, batch_size=self.batch_size)
