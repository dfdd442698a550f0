"""The DDPG builder: replay table, n-step adder, noisy deterministic actor, learner."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from distrl.adders.base import Adder
from distrl.adders.nstep import NStepTransitionAdder
from distrl.agents.actors import FeedForwardActor
from distrl.agents.builder import Builder, Policy
from distrl.agents.ddpg.actor import DeterministicPolicy, GaussianNoise, NoisyPolicy, OrnsteinUhlenbeckNoise
from distrl.agents.ddpg.config import Config
from distrl.agents.ddpg.learning import DDPGLearner
from distrl.agents.ddpg.networks import DDPGNetworks
from distrl.core import Actor, Learner, VariableSource
from distrl.replay.client import ReplayClient, SampleBatch
from distrl.replay.rate_limiters import SampleToInsertRatio
from distrl.replay.samplers import UniformSampler
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.variables.client import VariableClient

REPLAY_TABLE = "transitions"


class DDPGBuilder(Builder):
    """Wires DDPG's parts from one ``Config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.batch_size = config.batch_size

    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """One uniform transition table with a samples-per-insert rate limiter.

        The limiter's window follows ``samples_per_insert_tolerance`` and is
        never narrower than one learner batch and one adder batch need
        (``SampleToInsertRatio.with_tolerance``).
        """
        config = self.config
        limiter = SampleToInsertRatio.with_tolerance(
            config.samples_per_insert, config.min_replay_size, config.samples_per_insert_tolerance,
            sample_batch_size=config.batch_size, insert_batch_size=config.adder_batch_size,
        )
        return [Table(REPLAY_TABLE, config.max_replay_size, UniformSampler(seed=seed), limiter)]

    def make_adder(self, client: ReplayClient) -> Adder:
        return NStepTransitionAdder(
            client, n_step=self.config.n_step, discount=self.config.discount,
            max_batch_size=self.config.adder_batch_size,
        )

    def make_policy(
        self, networks: DDPGNetworks, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """a = mu(s) for evaluation; otherwise mu(s) plus the configured noise, clipped to the bounds.

        The noise scale is ``exploration * noise_sigma * (high - low) / 2``
        per action dimension; ``exploration`` defaults to 1 (the distributed
        runtime gives each actor its own) and 0 switches the noise off.
        """
        if evaluation:
            return DeterministicPolicy(networks.policy_network)
        scale = 1.0 if exploration is None else float(exploration)
        if scale < 0:
            raise ValueError(f"exploration (the noise scale) must be >= 0, got {exploration!r}")
        config = self.config
        half_range = (networks.action_maximum.astype(np.float64) - networks.action_minimum) / 2.0
        sigma = scale * config.noise_sigma * half_range
        rng = np.random.default_rng(seed)
        if config.noise_type == "ou":
            noise = OrnsteinUhlenbeckNoise(sigma, config.ou_theta, config.ou_dt, rng)
        else:
            noise = GaussianNoise(sigma, rng)
        return NoisyPolicy(networks.policy_network, noise, networks.action_minimum, networks.action_maximum)

    def make_actor(
        self,
        policy: Policy,
        networks: DDPGNetworks,
        variable_source: VariableSource | None,
        adder: Adder | None,
    ) -> Actor:
        client = None
        if variable_source is not None:
            client = VariableClient(
                variable_source, {"policy": networks.policy_network}, self.config.variable_update_period
            )
        return FeedForwardActor(policy, adder, client)

    def make_learner(
        self,
        networks: DDPGNetworks,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        return DDPGLearner(networks, dataset, self.config, counter, logger, device)
