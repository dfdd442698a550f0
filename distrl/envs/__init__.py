"""Environments: the gymnasium adapter, Atari, the DeepMind Control Suite, the tutorial
GridWorld, validation and the registry."""

from distrl.envs.atari import AtariEnvironment
from distrl.envs.dmc import DmControlEnvironment
from distrl.envs.gridworld import GridWorld, ObservationType
from distrl.envs.gym_adapter import GymnasiumToDmEnv
from distrl.envs.registry import make_environment, reward_threshold
from distrl.envs.validation import EnvironmentValidationError, ValidatingWrapper
from distrl.envs.wrappers import EnvironmentWrapper

__all__ = [
    "AtariEnvironment",
    "DmControlEnvironment",
    "EnvironmentValidationError",
    "EnvironmentWrapper",
    "GridWorld",
    "GymnasiumToDmEnv",
    "ObservationType",
    "ValidatingWrapper",
    "make_environment",
    "reward_threshold",
]
