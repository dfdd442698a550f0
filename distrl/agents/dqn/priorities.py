"""Initial priorities computed by the actors (Ape-X, Horgan et al. 2018).

With prioritized replay a new transition has no TD error yet. Schaul et al.
(2016) insert it at the table's maximum priority, so it is sampled soon
whether it is surprising or not; with many actors feeding one learner that
floods the table with maximal priorities. Ape-X instead has each actor
compute the n-step |TD error| of its transitions with its own copy of the
network, batched per insert, and insert them with that priority.

The actor holds only the online network (it pulls no target network), so
the bootstrap is the plain n-step Q-learning target evaluated by that
network,

    p_i = |R_i + D_i * max_a Q(s'_i, a) - Q(s_i, a_i)| + priority_eps,

with R and D the adder's n-step reward sum and discount product (see
``distrl/adders/nstep.py``). The learner replaces it with its own double-Q
TD error the first time it samples the item.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from distrl.types import Transition
from distrl.utils.tensors import concat_nests, leading_size, to_tensor, to_tensors


def td_error_priorities(q_network: nn.Module, priority_eps: float) -> Callable[[Transition], np.ndarray]:
    """A ``priority_fn`` for ``NStepTransitionAdder``: a batch of B transitions -> float64 [B] priorities.

    ``q_network`` maps observations [B, ...] (or nests of them) to Q-values
    float32 [B, num_actions]; it is read at call time, so an actor whose
    variable client reloads the network's parameters gets priorities from
    the newest weights it has. One forward pass over the 2B observations
    and next observations per batch, without gradients, on the network's
    device.
    """
    eps = float(priority_eps)

    def priorities(batch: Transition) -> np.ndarray:
        device = next(q_network.parameters()).device
        observation = to_tensors(batch.observation, device)
        size = leading_size(observation)
        with torch.no_grad():
            q_both = q_network(concat_nests([observation, to_tensors(batch.next_observation, device)]))
            q_taken = q_both[:size].gather(-1, to_tensor(batch.action, device).long().unsqueeze(-1)).squeeze(-1)
            target = (to_tensor(batch.reward, device)
                      + to_tensor(batch.discount, device) * q_both[size:].max(dim=-1).values)
            td_error = (target - q_taken).abs()
        return td_error.cpu().numpy().astype(np.float64) + eps

    return priorities
