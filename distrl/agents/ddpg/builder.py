"""The DDPG builder: noisy deterministic policies, per-actor noise scales, learner.

The table, the n-step adders and the actors are ``OffPolicyBuilder``'s; this
builder adds the policies, per-actor noise scales and the learner. With
``envs_per_actor`` N > 1 an actor steps N environments in lockstep through a
``BatchedNoisyPolicy`` (one batched forward of mu per vector step).
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from distrl.agents.builder import Policy
from distrl.agents.ddpg.actor import (
    BatchedNoisyPolicy,
    DeterministicPolicy,
    GaussianNoise,
    NoisyPolicy,
    OrnsteinUhlenbeckNoise,
    spread_noise_scale,
)
from distrl.agents.ddpg.config import Config
from distrl.agents.ddpg.learning import DDPGLearner
from distrl.agents.ddpg.networks import DDPGNetworks
from distrl.agents.off_policy import OffPolicyBuilder
from distrl.core import Learner
from distrl.replay.client import ReplayClient
from distrl.types import SampleBatch
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger


class DDPGBuilder(OffPolicyBuilder):
    """Wires DDPG's parts from one ``Config``; actors pull ``policy``."""

    config: Config
    variable_names = ("policy",)

    def actor_exploration(self, index: int, num_actors: int) -> float | None:
        """Actor ``index``'s noise scale ``spread_noise_scale(index, N)`` when
        ``actor_noise_scales`` is 'spread' and N > 1; None (scale 1) otherwise."""
        if self.config.actor_noise_scales == "spread" and num_actors > 1:
            return spread_noise_scale(index, num_actors)
        return None

    def actor_modules(self, networks: DDPGNetworks) -> Mapping[str, nn.Module]:
        return {"policy": networks.policy_network}

    def make_policy(
        self, networks: DDPGNetworks, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """a = mu(s) for evaluation; otherwise mu(s) plus the configured noise, clipped to the bounds.

        The noise scale is ``exploration * noise_sigma * (high - low) / 2``
        per action dimension; ``exploration`` defaults to 1 (see
        ``actor_exploration``) and 0 switches the noise off. With
        ``envs_per_actor`` N > 1 it is a ``BatchedNoisyPolicy`` whose N
        environments each draw their own noise stream at that scale. Raises
        ValueError for a negative ``exploration``.
        """
        if evaluation:
            return DeterministicPolicy(networks.policy_network)
        scale = 1.0 if exploration is None else float(exploration)
        if scale < 0:
            raise ValueError(f"exploration (the noise scale) must be >= 0, got {exploration!r}")
        config = self.config
        half_range = (networks.action_maximum.astype(np.float64) - networks.action_minimum) / 2.0
        sigma = scale * config.noise_sigma * half_range
        if self.envs_per_actor > 1:
            sigma = np.broadcast_to(sigma, (self.envs_per_actor, *sigma.shape)).copy()
        rng = np.random.default_rng(seed)
        if config.noise_type == "ou":
            noise = OrnsteinUhlenbeckNoise(sigma, config.ou_theta, config.ou_dt, rng)
        else:
            noise = GaussianNoise(sigma, rng)
        policy_class = BatchedNoisyPolicy if self.envs_per_actor > 1 else NoisyPolicy
        return policy_class(networks.policy_network, noise, networks.action_minimum, networks.action_maximum)

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
