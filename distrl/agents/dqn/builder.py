"""The DQN builder: replay table, n-step adder, epsilon-greedy actor, learner."""

from __future__ import annotations

from typing import Iterator

import torch

from distrl.adders.base import Adder
from distrl.adders.nstep import NStepTransitionAdder
from distrl.agents.actors import FeedForwardActor
from distrl.agents.builder import Builder, Policy
from distrl.agents.dqn.actor import EpsilonGreedyPolicy, GreedyPolicy
from distrl.agents.dqn.config import Config
from distrl.agents.dqn.learning import DQNLearner
from distrl.agents.dqn.networks import DQNNetworks
from distrl.core import Actor, Learner, VariableSource
from distrl.replay.client import ReplayClient, SampleBatch
from distrl.replay.rate_limiters import SampleToInsertRatio
from distrl.replay.samplers import PrioritizedSampler, UniformSampler
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.variables.client import VariableClient

REPLAY_TABLE = "transitions"


class DQNBuilder(Builder):
    """Wires DQN's parts from one ``Config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.batch_size = config.batch_size

    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """One transition table with a samples-per-insert rate limiter.

        The limiter's window follows ``samples_per_insert_tolerance`` and is
        never narrower than one learner batch and one adder batch need
        (``SampleToInsertRatio.with_tolerance``).
        """
        config = self.config
        if config.prioritized:
            sampler = PrioritizedSampler(
                alpha=config.priority_exponent, beta=config.importance_sampling_exponent, seed=seed
            )
        else:
            sampler = UniformSampler(seed=seed)
        limiter = SampleToInsertRatio.with_tolerance(
            config.samples_per_insert, config.min_replay_size, config.samples_per_insert_tolerance,
            sample_batch_size=config.batch_size, insert_batch_size=config.adder_batch_size,
        )
        return [Table(REPLAY_TABLE, config.max_replay_size, sampler, limiter)]

    def make_adder(self, client: ReplayClient) -> Adder:
        return NStepTransitionAdder(
            client, n_step=self.config.n_step, discount=self.config.discount,
            max_batch_size=self.config.adder_batch_size,
        )

    def make_policy(
        self, networks: DQNNetworks, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """Greedy for evaluation; epsilon-greedy otherwise (a fixed epsilon when
        ``exploration`` is given, the config's linear decay when it is not)."""
        if evaluation:
            return GreedyPolicy(networks.q_network)
        if exploration is None:
            start, end, decay = self.config.epsilon_start, self.config.epsilon_end, self.config.epsilon_decay_steps
        else:
            start, end, decay = exploration, exploration, 0
        return EpsilonGreedyPolicy(networks.q_network, networks.num_actions, start, end, decay, seed=seed)

    def make_actor(
        self,
        policy: Policy,
        networks: DQNNetworks,
        variable_source: VariableSource | None,
        adder: Adder | None,
    ) -> Actor:
        client = None
        if variable_source is not None:
            client = VariableClient(
                variable_source, {"q_network": networks.q_network}, self.config.variable_update_period
            )
        return FeedForwardActor(policy, adder, client)

    def make_learner(
        self,
        networks: DQNNetworks,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        return DQNLearner(networks, dataset, self.config, replay_client, counter, logger, device)
