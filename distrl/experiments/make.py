"""Builds an ExperimentConfig from an agent name, an environment name and overrides."""

from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping

from distrl.agents import get_agent
from distrl.envs import make_environment
from distrl.envs.registry import reward_threshold as env_reward_threshold
from distrl.experiments.config import ExperimentConfig
from distrl.utils.config import ConfigError, apply_overrides


def make_experiment_config(
    agent: str,
    env: str,
    seed: int = 0,
    max_env_steps: int = 50_000,
    agent_overrides: Mapping[str, Any] | Iterable[str] = (),
    **experiment_fields: Any,
) -> ExperimentConfig:
    """Returns a ready-to-run experiment for a registered agent and environment name.

    ``agent_overrides`` are ``key=value`` strings (or a mapping) applied to the
    agent's ``Config``; ``experiment_fields`` set ``ExperimentConfig`` fields.
    The reward threshold defaults to the environment's own (None when it has none).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    module = get_agent(agent)
    agent_config = apply_overrides(module.Config(), agent_overrides, owner=f"{agent} config")
    environment_factory = functools.partial(make_environment, env)
    if experiment_fields.get("reward_threshold") is None:
        probe = environment_factory(seed)
        experiment_fields["reward_threshold"] = env_reward_threshold(probe)
        probe.close()
    return ExperimentConfig(
        agent=agent,
        env=env,
        builder=module.Builder(agent_config),
        network_factory=functools.partial(module.make_networks, config=agent_config),
        environment_factory=environment_factory,
        max_env_steps=max_env_steps,
        seed=seed,
        agent_config=agent_config,
        **experiment_fields,
    )
