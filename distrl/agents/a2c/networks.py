"""A2C networks: encoder -> policy torso -> policy head, and a value torso -> value head.

The policy head is categorical for a ``DiscreteArray`` action spec and a
diagonal Gaussian (state-independent, learned log std) for a 1-D bounded
float action spec. With ``shared_torso`` both heads read one torso;
otherwise the value function has its own torso of the same sizes (the
encoder, which has no parameters for vector observations, is always shared).

Distribution argument checks are off (they cost more than the forward pass
of these small networks); a diverged network shows up as NaN losses instead.

Initialisation follows the usual on-policy recipe (as in stable-baselines3):
orthogonal weights with gain sqrt(2) for hidden layers, 0.01 for the policy
output (near-uniform initial policy) and 1 for the value output; zero biases.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from dm_env import specs
from torch import distributions as D
from torch import nn

from distrl.agents.a2c.config import Config
from distrl.networks.composition import Network
from distrl.networks.factory import make_encoder
from distrl.networks.heads import CategoricalHead, DiagGaussianHead, MultiCategoricalHead, ValueHead
from distrl.networks.init import orthogonal_init_
from distrl.networks.torsos import MLP
from distrl.specs import EnvironmentSpec, narrow_bounds
from distrl.utils.tensors import concat_nests, leading_size


class ActorCritic(nn.Module):
    """pi(. | s) and V(s).

    ``policy`` is the ``Network(encoder, torso, head)`` an actor needs (its
    parameters are what the learner publishes as ``'policy'``); the value
    function is ``value_head(value_torso(encoder(s)))``, with the policy's
    torso in place of ``value_torso`` when the torso is shared.

    ``action_minimum`` / ``action_maximum`` are the action bounds for a
    continuous policy (numpy, used by actors to clip), None for a discrete one.
    ``action_nvec`` is the number of values of each component of a
    MultiDiscrete action (None otherwise).
    """

    def __init__(
        self,
        policy: Network,
        value_torso: nn.Module | None,
        value_head: nn.Module,
        action_minimum: np.ndarray | None = None,
        action_maximum: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.value_torso = value_torso
        self.value_head = value_head
        self.discrete = isinstance(policy.head, (CategoricalHead, MultiCategoricalHead))
        self.action_nvec = policy.head.nvec if isinstance(policy.head, MultiCategoricalHead) else None
        self.action_minimum = action_minimum
        self.action_maximum = action_maximum

    @property
    def shared_torso(self) -> bool:
        return self.value_torso is None

    def forward(self, observation: torch.Tensor) -> tuple[D.Distribution, torch.Tensor]:
        """Returns (pi(. | s), V(s)) with one encoder (and, if shared, torso) pass."""
        features = self.policy.encoder(observation)
        policy_features = self.policy.torso(features)
        value_features = policy_features if self.value_torso is None else self.value_torso(features)
        return self.policy.head(policy_features), self.value_head(value_features)

    def forward_with_bootstrap(
        self, observation: torch.Tensor, next_observation: torch.Tensor
    ) -> tuple[D.Distribution, torch.Tensor, torch.Tensor]:
        """Returns (pi(. | o), V(o), V(next_o)) with V(next_o) detached.

        Observation and next observation go through the encoder and value
        torso as one batch (concatenated on the first axis), so each stage
        runs once; with a shared torso the policy head reads the observation
        rows of the same torso output.
        """
        n = leading_size(observation)
        features = self.policy.encoder(concat_nests([observation, next_observation]))
        if self.value_torso is None:
            torso_features = self.policy.torso(features)
            distribution = self.policy.head(torso_features[:n])
            values = self.value_head(torso_features)
        else:
            distribution = self.policy.head(self.policy.torso(features[:n]))
            values = self.value_head(self.value_torso(features))
        return distribution, values[:n], values[n:].detach()

    def value(self, observation: torch.Tensor) -> torch.Tensor:
        """V(s), shape ``[*B]``."""
        features = self.policy.encoder(observation)
        torso = self.policy.torso if self.value_torso is None else self.value_torso
        return self.value_head(torso(features))


def _has_layers(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in module.modules())


def multi_discrete_nvec(actions: Any) -> tuple[int, ...] | None:
    """The component sizes of a MultiDiscrete action spec (an integer ``BoundedArray``
    of rank 1 with minimum 0), or None for any other spec."""
    if not isinstance(actions, specs.BoundedArray) or getattr(actions, "num_values", None) is not None:
        return None
    if not np.issubdtype(actions.dtype, np.integer) or len(actions.shape) != 1:
        return None
    if not (np.broadcast_to(actions.minimum, actions.shape) == 0).all():
        return None
    return tuple(int(m) + 1 for m in np.broadcast_to(actions.maximum, actions.shape))


def make_networks(spec: EnvironmentSpec, config: Config) -> ActorCritic:
    """Builds the actor-critic for a Discrete, MultiDiscrete or 1-D bounded float action spec.

    Raises ValueError naming the spec for any other action spec.
    """
    encoder = make_encoder(spec.observations)
    if _has_layers(encoder):
        orthogonal_init_(encoder, math.sqrt(2.0))

    def torso() -> MLP:
        return orthogonal_init_(MLP(encoder.output_dim, config.hidden_sizes, activation=nn.Tanh), math.sqrt(2.0))

    policy_torso = torso()
    num_actions = getattr(spec.actions, "num_values", None)
    nvec = multi_discrete_nvec(spec.actions)
    action_minimum = action_maximum = None
    if num_actions is not None:
        head: nn.Module = CategoricalHead(policy_torso.output_dim, num_actions, validate_args=False)
        orthogonal_init_(head.logits, 0.01)
    elif nvec is not None:
        head = MultiCategoricalHead(policy_torso.output_dim, nvec, validate_args=False)
        orthogonal_init_(head.logits, 0.01)
    else:
        actions = spec.actions
        if (not isinstance(actions, specs.Array) or len(actions.shape) != 1
                or not np.issubdtype(actions.dtype, np.floating)):
            raise ValueError(
                f"A2C needs a Discrete (DiscreteArray), MultiDiscrete (integer BoundedArray of rank 1 from 0) "
                f"or 1-D float (Box) action spec, got {actions!r}"
            )
        head = DiagGaussianHead(
            policy_torso.output_dim, actions.shape[0], init_log_std=config.init_log_std, validate_args=False
        )
        orthogonal_init_(head.mean, 0.01)
        # float32 bounds never outside the spec's (a float64 bound is rounded inwards).
        action_minimum, action_maximum = narrow_bounds(
            np.broadcast_to(getattr(actions, "minimum", -np.inf), actions.shape),
            np.broadcast_to(getattr(actions, "maximum", np.inf), actions.shape), np.float32,
        )
    value_torso = None if config.shared_torso else torso()
    value_head = orthogonal_init_(ValueHead(policy_torso.output_dim), 1.0)
    return ActorCritic(
        Network(encoder, policy_torso, head), value_torso, value_head,
        action_minimum=None if action_minimum is None else action_minimum.copy(),
        action_maximum=None if action_maximum is None else action_maximum.copy(),
    )
