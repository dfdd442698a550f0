"""A2C: config, actor-critic networks, sampling actor, GAE and loss, learner, builder."""

from distrl.agents.a2c.builder import A2CBuilder as Builder
from distrl.agents.a2c.config import Config
from distrl.agents.a2c.networks import ActorCritic, make_networks

__all__ = ["ActorCritic", "Builder", "Config", "make_networks"]
