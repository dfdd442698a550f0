"""The DQN builder: uniform or prioritized transition table, epsilon-greedy actor, learner.

The table, the n-step adders and the actor are ``OffPolicyBuilder``'s; this
builder adds the sampler choice, the policies, per-actor epsilons and the
learner.

Several environments per actor. With ``Config.envs_per_actor`` N > 1 the
runtimes (the single-process mode and every Ray env actor) step N
environments in lockstep: ``make_policy`` gives a
``BatchedEpsilonGreedyPolicy`` (one batched Q forward per vector step,
epsilon-greedy per environment at the actor's epsilon) and
``OffPolicyBuilder.make_batched_actor`` a ``BatchedFeedForwardActor`` over the lanes of one
``VectorNStepTransitionAdder``, which inserts N x ``adder_batch_size``
transitions per call (``OffPolicyBuilder.make_adders``). The env-step budget counts every
environment's steps; an actor takes only whole vector steps.
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from distrl.agents.builder import Policy
from distrl.agents.dqn.actor import BatchedEpsilonGreedyPolicy, EpsilonGreedyPolicy, GreedyPolicy, apex_epsilon
from distrl.agents.dqn.config import Config
from distrl.agents.dqn.learning import DQNLearner
from distrl.agents.dqn.networks import DQNNetworks
from distrl.agents.dqn.priorities import td_error_priorities
from distrl.agents.off_policy import OffPolicyBuilder
from distrl.core import Learner
from distrl.replay.client import ReplayClient
from distrl.replay.samplers import PrioritizedSampler, Sampler, UniformSampler
from distrl.types import SampleBatch, Transition
from distrl.utils.config import require
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger


class DQNBuilder(OffPolicyBuilder):
    """Wires DQN's parts from one ``Config``; actors pull ``q_network``."""

    config: Config
    variable_names = ("q_network",)

    def make_sampler(self, seed: int) -> Sampler:
        """Prioritized (sum tree, alpha and beta from the config) or uniform."""
        config = self.config
        if config.prioritized:
            return PrioritizedSampler(
                alpha=config.priority_exponent, beta=config.importance_sampling_exponent, seed=seed
            )
        return UniformSampler(seed=seed)

    def actor_exploration(self, index: int, num_actors: int) -> float | None:
        """Ape-X's fixed epsilon for actor ``index`` of N > 1 when ``actor_epsilons`` is
        'apex'; None (the config's epsilon schedule) for a single actor or 'schedule'."""
        if self.config.actor_epsilons == "apex" and num_actors > 1:
            return apex_epsilon(index, num_actors)
        return None

    def check_budget(self, max_env_steps: int) -> None:
        """The off-policy checks, and a ``target_update_period`` shorter than the run: a target
        network never copied from the online one keeps its random initial values, and
        every bootstrap target with it. Raises ``ConfigError`` naming the fields."""
        super().check_budget(max_env_steps)
        updates = self.expected_updates(max_env_steps)
        require(self.config.target_update_period <= updates, "Config", "target_update_period",
                self.config.target_update_period,
                f"be <= the {updates} learner updates this run makes (max_env_steps {max_env_steps}, "
                f"min_replay_size {self.config.min_replay_size}, samples_per_insert "
                f"{self.config.samples_per_insert}, batch_size {self.config.batch_size}): the target network "
                f"would never be updated")

    def actor_modules(self, networks: DQNNetworks) -> Mapping[str, nn.Module]:
        return {"q_network": networks.q_network}

    def make_policy(
        self, networks: DQNNetworks, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """Greedy for evaluation; epsilon-greedy otherwise (a fixed epsilon when
        ``exploration`` is given, the config's linear decay when it is not), batched
        (``BatchedEpsilonGreedyPolicy``, also a ``BatchedPolicy``) when ``envs_per_actor`` > 1."""
        if evaluation:
            return GreedyPolicy(networks.q_network)
        if exploration is None:
            start, end, decay = self.config.epsilon_start, self.config.epsilon_end, self.config.epsilon_decay_steps
        else:
            start, end, decay = exploration, exploration, 0
        policy_class = BatchedEpsilonGreedyPolicy if self.envs_per_actor > 1 else EpsilonGreedyPolicy
        return policy_class(networks.q_network, networks.num_actions, start, end, decay, seed=seed)

    def make_priority_fn(self, networks: DQNNetworks) -> Callable[[Transition], np.ndarray] | None:
        """Ape-X's initial priorities (``td_error_priorities`` over the actor's Q network) when
        ``actor_priorities`` is on; None otherwise (new items get the table's maximum priority)."""
        if not self.config.actor_priorities:
            return None
        if networks is None:
            raise ValueError("Config.actor_priorities is true, but the adder was made without the actor's networks "
                             "(make_adder(client, networks)) to compute priorities with")
        return td_error_priorities(networks.q_network, self.config.priority_eps)

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
