"""DDPG: config, actor and critic networks, noisy deterministic policies, losses, learner, builder."""

from distrl.agents.ddpg.builder import DDPGBuilder as Builder
from distrl.agents.ddpg.config import Config
from distrl.agents.ddpg.networks import DDPGNetworks, make_networks

__all__ = ["Builder", "Config", "DDPGNetworks", "make_networks"]
