"""GAE(lambda) over trajectory segments and the A2C loss.

Both are pure functions of tensors; shapes are [B, T] (B segments of T
steps) unless stated otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import distributions as D


def gae(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    lasts: torch.Tensor,
    masks: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    lambda_: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates (Schulman et al. 2016) and return targets.

    Inputs, all [B, T] (see ``distrl.types.Trajectory``): ``rewards`` r_t,
    ``discounts`` the environment discounts d_t (0 at a termination),
    ``lasts`` l_t (True where the step ended an episode, by termination or
    truncation), ``masks`` m_t (False on padding), ``values`` V(o_t) and
    ``next_values`` V(next_observation_t). Then

        delta_t = r_t + gamma * d_t * V(next_observation_t) - V(o_t)
        A_t     = m_t * (delta_t + gamma * lambda * d_t * (1 - l_t) * A_{t+1}),   A_T = 0
        R_t     = A_t + V(o_t)

    computed backwards over t, vectorised over the batch. Hence

    * a termination (l = 1, d = 0) does not bootstrap: delta_t = r_t - V(o_t),
      and nothing flows back from the next episode;
    * a truncation (l = 1, d = 1) bootstraps from V of the episode's final
      observation, and nothing flows back from the next episode;
    * the last real step of an unfinished segment (l = 0) bootstraps from V
      of the segment's bootstrap observation, and the recursion starts there
      since A_T = 0 and padding steps have A = 0 (m = 0);
    * padding steps get A = 0 and R = V(o_t) (the loss masks them out).

    With lambda = 1 and no episode end, R_t is the T-step discounted return
    bootstrapped from the segment's last next observation; with lambda = 0,
    the one-step TD target.

    Returns:
      ``(advantages, returns)``, each [B, T], in the dtype of ``rewards``.
    """
    dtype = rewards.dtype
    masks = masks.to(dtype)
    not_last = 1.0 - lasts.to(dtype)
    discounts = discounts.to(dtype)
    deltas = rewards + gamma * discounts * next_values - values
    carry = (gamma * lambda_) * discounts * not_last
    advantage = torch.zeros_like(rewards[:, 0])
    advantages = []
    for t in range(rewards.shape[1] - 1, -1, -1):
        advantage = masks[:, t] * (deltas[:, t] + carry[:, t] * advantage)
        advantages.append(advantage)
    advantages_tensor = torch.stack(advantages[::-1], dim=1)
    return advantages_tensor, advantages_tensor + values


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(x * mask) / max(sum(mask), 1)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


class A2CLossOutput(NamedTuple):
    """The total loss to minimise and its parts, as ``a2c_loss`` returns them."""

    loss: torch.Tensor  # scalar, with gradients
    policy_loss: torch.Tensor  # scalar, detached
    value_loss: torch.Tensor  # scalar, detached
    entropy: torch.Tensor  # scalar, detached


def a2c_loss(
    distribution: D.Distribution,
    values: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    masks: torch.Tensor,
    value_coef: float,
    entropy_coef: float,
    normalize_advantages: bool,
) -> A2CLossOutput:
    """The advantage actor-critic loss over the unmasked steps of a batch.

    With E the mean over steps with m_t = 1, A_t the (fixed, no gradient)
    advantages and R_t the return targets:

        policy_loss = -E[ A_t * log pi(a_t | o_t) ]
        value_loss  =  E[ (R_t - V(o_t))^2 ]
        entropy     =  E[ H(pi(. | o_t)) ]
        loss        =  policy_loss + value_coef * value_loss - entropy_coef * entropy

    With ``normalize_advantages`` A is standardised first,
    A <- (A - E[A]) / (std(A) + 1e-8), over the unmasked steps.
    ``distribution`` is pi(. | o_t) with batch shape [B, T]; ``values`` is
    V(o_t) with gradients; ``actions`` are the actions sampled (for a
    Gaussian policy, before clipping).
    """
    advantages = advantages.detach()
    if normalize_advantages:
        mean = masked_mean(advantages, masks)
        std = masked_mean((advantages - mean) ** 2, masks).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    log_prob = distribution.log_prob(actions)
    policy_loss = -masked_mean(advantages * log_prob, masks)
    value_loss = masked_mean((returns.detach() - values) ** 2, masks)
    entropy = masked_mean(distribution.entropy(), masks)
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return A2CLossOutput(loss, policy_loss.detach(), value_loss.detach(), entropy.detach())
