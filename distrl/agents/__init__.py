"""Agents, one folder each (config, networks, actor/policy, losses, learning, builder).

``AGENTS`` maps the command-line name to the agent's module; each module
exposes ``Config``, ``Builder`` and ``make_networks``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

AGENTS = {
    "dqn": "distrl.agents.dqn",
    "ddpg": "distrl.agents.ddpg",
    "a2c": "distrl.agents.a2c",
}


def get_agent(name: str) -> ModuleType:
    """Imports the agent module registered under ``name``."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; available: {', '.join(sorted(AGENTS))}")
    return importlib.import_module(AGENTS[name])
