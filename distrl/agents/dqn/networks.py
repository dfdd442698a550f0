"""DQN networks: encoder -> MLP torso -> discrete Q head."""

from __future__ import annotations

import dataclasses

from torch import nn

from distrl.agents.dqn.config import Config
from distrl.networks.composition import Network
from distrl.networks.factory import make_encoder
from distrl.networks.heads import DiscreteQHead
from distrl.networks.torsos import MLP
from distrl.specs import EnvironmentSpec


@dataclasses.dataclass
class DQNNetworks:
    """The online Q-network; the learner derives its own target copy."""

    q_network: nn.Module
    num_actions: int


def make_networks(spec: EnvironmentSpec, config: Config) -> DQNNetworks:
    """Builds Q(s, .) for a discrete action spec over any observation spec ``make_encoder`` takes;
    raises ValueError naming the spec for any other action spec."""
    num_actions = getattr(spec.actions, "num_values", None)
    if num_actions is None:
        raise ValueError(
            f"DQN needs a Discrete action space (dm_env.specs.DiscreteArray), got {spec.actions!r}; "
            "for Box actions use DDPG or A2C, for MultiDiscrete actions A2C"
        )
    encoder = make_encoder(spec.observations)
    torso = MLP(encoder.output_dim, config.hidden_sizes)
    head = DiscreteQHead(torso.output_dim, num_actions, dueling=config.dueling)
    return DQNNetworks(q_network=Network(encoder, torso, head), num_actions=num_actions)
