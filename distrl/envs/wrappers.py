"""The base class for ``dm_env.Environment`` wrappers."""

from __future__ import annotations

from typing import Any

import dm_env

from distrl.types import Nest


class EnvironmentWrapper(dm_env.Environment):
    """Delegates every ``dm_env`` method, and any other attribute, to the wrapped env.

    Subclasses override only what they change. Attribute delegation means
    ``wrapper.reward_threshold`` or ``wrapper.gym_env`` reach the innermost
    environment that defines them, however many wrappers sit on top.
    """

    def __init__(self, environment: dm_env.Environment):
        self._environment = environment

    @property
    def environment(self) -> dm_env.Environment:
        """The directly wrapped environment (one level down)."""
        return self._environment

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails. ``_environment`` itself is
        # excluded so that unpickling (before ``__init__`` has run) does not
        # recurse forever.
        if name == "_environment":
            raise AttributeError(name)
        return getattr(self._environment, name)

    def reset(self) -> dm_env.TimeStep:
        return self._environment.reset()

    def step(self, action: Nest) -> dm_env.TimeStep:
        return self._environment.step(action)

    def observation_spec(self) -> Any:
        return self._environment.observation_spec()

    def action_spec(self) -> Any:
        return self._environment.action_spec()

    def reward_spec(self) -> Any:
        return self._environment.reward_spec()

    def discount_spec(self) -> Any:
        return self._environment.discount_spec()

    def close(self) -> None:
        self._environment.close()
