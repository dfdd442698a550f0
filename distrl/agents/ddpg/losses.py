"""The DDPG critic (TD) and actor (deterministic policy gradient) losses."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class CriticLossOutput(NamedTuple):
    """The critic's TD loss (scalar, with gradients) and its diagnostics."""

    loss: torch.Tensor
    td_error: torch.Tensor  # [B], y - Q(s, a), detached
    q_mean: torch.Tensor  # scalar, mean Q(s, a), detached


def critic_td_loss(
    critic: nn.Module,
    target_policy: nn.Module,
    target_critic: nn.Module,
    observation: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_observation: torch.Tensor,
) -> CriticLossOutput:
    """The squared TD error of Q(s, a) against an n-step target from the target nets.

    The transition already holds the n-step return R and the total discount D
    (gamma**k times the environment discounts, 0 past a termination; see
    ``distrl.types.Transition``), so with mu' and Q' the target actor and critic

        y = R + D * Q'(s', mu'(s'))          (no gradient flows into y)
        loss = mean_i (Q(s_i, a_i) - y_i)^2.
    """
    with torch.no_grad():
        next_value = target_critic(next_observation, target_policy(next_observation))
        target = reward + discount * next_value
    q = critic(observation, action)
    td_error = target - q
    loss = td_error.square().mean()
    return CriticLossOutput(loss, td_error.detach(), q.detach().mean())


def actor_loss(
    policy: nn.Module, critic: nn.Module, observation: torch.Tensor, pre_activation_weight: float = 0.0
) -> torch.Tensor:
    """The deterministic policy gradient loss (Silver et al. 2014), with an optional penalty on the
    actor's pre-tanh output x:

        loss = -mean_i Q(s_i, mu(s_i)) + w * mean_i sum_j x_ij^2,

    whose first term's gradient in the actor's parameters phi is
    -mean_i grad_a Q(s_i, a)|_{a = mu(s_i)} grad_phi mu(s_i). The critic's
    parameters also receive a gradient from this loss; the learner asks
    autograd for the actor's parameters only, so the critic is not moved.

    The penalty (w = ``pre_activation_weight`` > 0; the policy must then be a
    ``Network`` with a ``DeterministicHead``) keeps the tanh out of
    saturation: past |x| of about 4 its slope is below 1e-3, so the policy
    gradient can no longer turn an action that sits at a bound, however the
    critic changes. rlkit's DDPG offers the same term
    (``policy_pre_activation_weight``).
    """
    if pre_activation_weight == 0.0:
        return -critic(observation, policy(observation)).mean()
    pre_activation = policy.head.linear(policy.torso(policy.encoder(observation)))
    action = policy.head.squash(pre_activation)
    penalty = pre_activation.square().sum(-1).mean()
    return -critic(observation, action).mean() + pre_activation_weight * penalty
