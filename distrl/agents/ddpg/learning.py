"""The DDPG learner: one batch in, one critic step and one actor step out."""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import nn

from distrl.agents.ddpg.config import Config
from distrl.agents.ddpg.losses import actor_loss, critic_td_loss
from distrl.agents.ddpg.networks import DDPGNetworks
from distrl.agents.learning import TorchLearner
from distrl.networks.composition import Network
from distrl.networks.heads import DeterministicHead
from distrl.networks.target import PolyakUpdate, make_target
from distrl.agents.optimizers import make_adam
from distrl.types import SampleBatch
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.utils.tensors import to_tensor, to_tensors


class DDPGLearner(TorchLearner):
    """DDPG (Lillicrap et al. 2016) from replayed n-step transitions.

    Each ``step()`` takes one ``SampleBatch`` from ``dataset`` (leaves [B, ...])
    and

    1. moves the critic Q one Adam step down the TD loss
       mean (Q(s, a) - y)^2 with y = R + D * Q'(s', mu'(s'))
       (see ``losses.critic_td_loss``);
    2. moves the actor mu one Adam step down -mean Q(s, mu(s)), evaluated
       with the critic just updated, plus ``actor_pre_activation_weight``
       times the mean squared pre-tanh output (``losses.actor_loss``);
       autograd computes gradients for the actor's parameters only;
    3. moves both targets towards their online nets,
       theta' <- (1 - tau) theta' + tau theta.

    Each network's gradient norm is clipped to ``max_grad_norm`` when set.
    Logs ``losses/critic_loss``, ``losses/actor_loss`` (with the penalty) and
    ``losses/q_values``. Raises ValueError when ``actor_pre_activation_weight``
    > 0 and the policy is not a ``Network`` with a ``DeterministicHead`` (the
    penalty needs its pre-tanh output).
    Publishes ``policy``.
    """

    def __init__(
        self,
        networks: DDPGNetworks,
        dataset: Iterator[SampleBatch],
        config: Config,
        counter: Counter | None = None,
        logger: Logger | None = None,
        device: torch.device = torch.device("cpu"),
    ) -> None:
        self._config = config
        policy = networks.policy_network
        if config.actor_pre_activation_weight > 0 and not (
                isinstance(policy, Network) and isinstance(policy.head, DeterministicHead)):
            raise ValueError(
                f"Config.actor_pre_activation_weight={config.actor_pre_activation_weight} needs a policy "
                f"network made as Network(encoder, torso, DeterministicHead), got {type(policy).__name__}; "
                f"set actor_pre_activation_weight=0 for another policy network")
        self._policy = policy.to(device)
        self._critic = networks.critic_network.to(device)
        self._target_policy = make_target(self._policy)
        self._target_critic = make_target(self._critic)
        # Both pairs in one container, so one call moves both targets.
        self._update_targets = PolyakUpdate(
            nn.ModuleList([self._target_critic, self._target_policy]), nn.ModuleList([self._critic, self._policy]))
        self._policy_params = list(self._policy.parameters())
        self._critic_params = list(self._critic.parameters())
        self._policy_optimizer = make_adam(self._policy_params, config.actor_learning_rate, device)
        self._critic_optimizer = make_adam(self._critic_params, config.critic_learning_rate, device)
        super().__init__(
            dataset=dataset,
            state={
                "policy": self._policy, "critic": self._critic,
                "target_policy": self._target_policy, "target_critic": self._target_critic,
                "policy_optimizer": self._policy_optimizer, "critic_optimizer": self._critic_optimizer,
            },
            published={"policy": self._policy},
            metric_names=("losses/critic_loss", "losses/actor_loss", "losses/q_values"),
            log_every=config.log_every, counter=counter, logger=logger, device=device,
        )

    def _update(self) -> Mapping[str, torch.Tensor]:
        data = next(self._dataset).data
        device, config = self._device, self._config
        observation = to_tensors(data.observation, device)

        critic_output = critic_td_loss(
            self._critic,
            self._target_policy,
            self._target_critic,
            observation=observation,
            action=to_tensor(data.action, device),
            reward=to_tensor(data.reward, device),
            discount=to_tensor(data.discount, device),
            next_observation=to_tensors(data.next_observation, device),
        )
        self._critic_optimizer.zero_grad(set_to_none=True)
        critic_output.loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_params, config.max_grad_norm, foreach=True)
        self._critic_optimizer.step()

        policy_loss = actor_loss(
            self._policy, self._critic, observation, config.actor_pre_activation_weight)
        self._policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward(inputs=self._policy_params)
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._policy_params, config.max_grad_norm, foreach=True)
        self._policy_optimizer.step()

        self._update_targets(config.tau)
        return {
            "losses/critic_loss": critic_output.loss.detach(),
            "losses/actor_loss": policy_loss.detach(),
            "losses/q_values": critic_output.q_mean,
        }
