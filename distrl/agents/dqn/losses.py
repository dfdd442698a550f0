"""The double-Q TD loss with n-step targets and importance weights."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from distrl.utils.tensors import concat_nests, leading_size


class TDLossOutput(NamedTuple):
    """The TD loss (scalar, with gradients), the TD errors (new priorities) and mean Q."""

    loss: torch.Tensor
    td_error: torch.Tensor  # [B], y - Q(s, a), detached
    q_mean: torch.Tensor  # scalar, detached


def double_q_td_loss(
    q_network: nn.Module,
    target_network: nn.Module,
    observation: Any,
    action: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_observation: Any,
    weights: torch.Tensor,
    double_q: bool,
    huber_delta: float,
) -> TDLossOutput:
    """Computes the (weighted) Huber TD loss of Q(s, a) against an n-step target.

    The transition already holds the n-step return R and the total discount D
    (gamma**k times the environment discounts, 0 past a termination), so

        y = R + D * Q_target(s', a*),
        a* = argmax_a Q_online(s', a)   (double Q, van Hasselt et al. 2016)
        a* = argmax_a Q_target(s', a)   (plain DQN)

        loss = mean_i  w_i * huber(y_i - Q_online(s_i, a_i)),

    with w the importance weights of prioritized replay (ones for uniform).
    The online network evaluates s and s' in one batched forward pass.
    ``observation`` and ``next_observation`` are tensors [B, ...] or nests of
    them (nested observations); ``action`` int [B]; ``reward``, ``discount``
    and ``weights`` float32 [B].
    """
    batch_size = leading_size(observation)
    with torch.no_grad():
        next_q_target = target_network(next_observation)
    if double_q:
        q_both = q_network(concat_nests([observation, next_observation]))
        q_all, next_q_online = q_both[:batch_size], q_both[batch_size:].detach()
        next_action = next_q_online.argmax(dim=-1, keepdim=True)
    else:
        q_all = q_network(observation)
        next_action = next_q_target.argmax(dim=-1, keepdim=True)
    next_value = next_q_target.gather(-1, next_action).squeeze(-1)
    target = reward + discount * next_value
    q_taken = q_all.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
    td_error = target - q_taken
    elementwise = F.huber_loss(q_taken, target, reduction="none", delta=huber_delta)
    loss = (weights * elementwise).mean()
    return TDLossOutput(loss, td_error.detach(), q_taken.detach().mean())
