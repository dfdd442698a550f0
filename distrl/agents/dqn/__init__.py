"""DQN: config, networks, epsilon-greedy actor, double-Q TD loss, learner, builder."""

from distrl.agents.dqn.builder import DQNBuilder as Builder
from distrl.agents.dqn.config import Config
from distrl.agents.dqn.networks import DQNNetworks, make_networks

__all__ = ["Builder", "Config", "DQNNetworks", "make_networks"]
