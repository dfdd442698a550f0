"""DDPG networks: a deterministic actor mu(s) and a critic Q(s, a).

Both follow Lillicrap et al. (2016): ReLU MLPs (400 and 300 units by
default) whose hidden layers start from the fan-in uniform initialisation
U(+-1/sqrt(fan_in)) and whose output layer starts from U(+-3e-3), so the
actor starts near the middle of the action box (tanh unsaturated) and the
critic starts near zero. The action enters the critic at layer
``critic_action_layer`` (the paper: the second layer).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from distrl.agents.ddpg.config import Config
from distrl.networks.composition import Network
from distrl.networks.factory import make_encoder
from distrl.networks.heads import DeterministicHead
from distrl.networks.init import fan_in_uniform_init_, uniform_final_init_
from distrl.networks.torsos import MLP
from distrl.specs import EnvironmentSpec, narrow_bounds

FINAL_INIT_SCALE = 3e-3


def _has_layers(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in module.modules())


def _fan_in_init(*modules: nn.Module) -> None:
    for module in modules:
        if _has_layers(module):
            fan_in_uniform_init_(module)


class Critic(nn.Module):
    """Q(s, a) of shape ``[B]``, with the action joining at hidden layer ``action_layer``.

    The observation goes through ``encoder`` and the first ``action_layer``
    hidden layers; the action, rescaled from [low, high] to [-1, 1] so that
    its scale does not depend on the environment's units, is concatenated
    onto those features; the remaining hidden layers and a linear output
    follow. ``action_layer=0`` concatenates at the input (one matmul on
    [features, action]); ``action_layer=len(hidden_sizes)`` at the output layer.
    """

    def __init__(
        self,
        encoder: nn.Module,
        hidden_sizes: tuple[int, ...],
        action_layer: int,
        action_minimum: np.ndarray,
        action_maximum: np.ndarray,
    ) -> None:
        super().__init__()
        if not 0 <= action_layer <= len(hidden_sizes):
            raise ValueError(f"action_layer must be in [0, {len(hidden_sizes)}], got {action_layer}.")
        low = np.asarray(action_minimum, dtype=np.float32)
        high = np.asarray(action_maximum, dtype=np.float32)
        self.action_dim = int(low.shape[0])
        self.action_layer = action_layer
        self.encoder = encoder
        self.observation_torso = MLP(encoder.output_dim, hidden_sizes[:action_layer])
        self.joint_torso = MLP(self.observation_torso.output_dim + self.action_dim, hidden_sizes[action_layer:])
        self.output = nn.Linear(self.joint_torso.output_dim, 1)
        self.register_buffer("action_center", torch.tensor((high + low) / 2.0))
        self.register_buffer("action_inverse_scale", torch.tensor(2.0 / (high - low)))

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q(s, a): observation [B, *obs_shape] and action [B, action_dim] (env units) -> float32 [B]."""
        features = self.observation_torso(self.encoder(observation))
        unit_action = (action - self.action_center) * self.action_inverse_scale
        joint = torch.cat([features, unit_action], dim=-1)
        return self.output(self.joint_torso(joint)).squeeze(-1)


@dataclasses.dataclass
class DDPGNetworks:
    """The online actor and critic; the learner derives its own target copies.

    ``policy_network(observation) -> action`` in [action_minimum, action_maximum];
    ``critic_network(observation, action) -> Q`` of shape ``[B]``.
    """

    policy_network: nn.Module
    critic_network: Critic
    action_minimum: np.ndarray
    action_maximum: np.ndarray


def _action_bounds(spec: EnvironmentSpec) -> tuple[np.ndarray, np.ndarray]:
    actions = spec.actions
    minimum = getattr(actions, "minimum", None)
    maximum = getattr(actions, "maximum", None)
    integer = np.dtype(getattr(actions, "dtype", np.float32)).kind in "iub"
    if minimum is None or maximum is None or getattr(actions, "num_values", None) is not None or integer:
        raise ValueError(
            f"DDPG needs a bounded continuous action spec (a gymnasium Box, dm_env.specs.BoundedArray), "
            f"got {actions!r}; for Discrete or MultiDiscrete actions use DQN or A2C"
        )
    if len(actions.shape) != 1 or np.dtype(actions.dtype).kind != "f":
        raise ValueError(f"DDPG needs 1-D float actions (a Box of shape (k,)), got {actions!r}")
    # float32 bounds never outside the spec's (a float64 bound is rounded inwards).
    low, high = narrow_bounds(
        np.broadcast_to(minimum, actions.shape), np.broadcast_to(maximum, actions.shape), np.float32
    )
    low, high = low.copy(), high.copy()
    if not np.all(np.isfinite(low) & np.isfinite(high)):
        raise ValueError(f"DDPG needs finite action bounds, got minimum={low}, maximum={high}")
    return low, high


def make_networks(spec: EnvironmentSpec, config: Config) -> DDPGNetworks:
    """Builds mu(s) and Q(s, a) for a bounded continuous action spec; raises for any other."""
    low, high = _action_bounds(spec)
    actor_encoder = make_encoder(spec.observations)
    actor_torso = MLP(actor_encoder.output_dim, config.actor_hidden_sizes)
    actor_head = DeterministicHead(actor_torso.output_dim, low, high)
    _fan_in_init(actor_encoder, actor_torso)
    uniform_final_init_(actor_head.linear, FINAL_INIT_SCALE)
    policy_network = Network(actor_encoder, actor_torso, actor_head)

    critic = Critic(
        make_encoder(spec.observations), config.critic_hidden_sizes, config.critic_action_layer, low, high
    )
    _fan_in_init(critic.encoder, critic.observation_torso, critic.joint_torso)
    uniform_final_init_(critic.output, FINAL_INIT_SCALE)
    return DDPGNetworks(policy_network, critic, low, high)
