"""``distrl.envs.image_tasks``: the Atari-shaped task gets the Nature CNN at its usual input size."""

from __future__ import annotations

import numpy as np

from distrl.agents import dqn
from distrl.envs.registry import make_environment
from distrl.networks.encoders import NatureCNN
from distrl.specs import make_environment_spec


def test_the_atari_shaped_task_shows_four_84x84_uint8_planes_to_a_nature_cnn():
    environment = make_environment("distrl.envs.image_tasks:atari_shaped", seed=0)
    observation = environment.reset().observation
    assert observation.shape == (4, 84, 84) and observation.dtype == np.uint8
    networks = dqn.make_networks(make_environment_spec(environment), dqn.Config())
    assert any(isinstance(module, NatureCNN) for module in networks.q_network.modules())
