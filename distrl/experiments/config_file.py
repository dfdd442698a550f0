"""Experiment config files: ``distrl train --config FILE``.

A config file is YAML. Its top-level keys are ``distrl train`` options by
their argparse dest (``max_env_steps`` for ``--max-env-steps``); the agent's
``Config`` fields go under ``agent_config``::

    agent: dqn
    env: gridworld:obstacle
    max_env_steps: 10000
    agent_config:
      n_step: 1

The file supplies defaults: flags on the command line win, and ``--set``
overrides apply after ``agent_config``. A run's own ``config.json`` is such
a file too (``distrl train --config RUN_DIR/config.json`` runs it again):
its record-only keys are read back as the options that produced them
(``progress`` as ``no_progress``, the ``distributed`` block as the mode and
the distributed flags) or skipped (``observation_encoder``). Its values pass the same checks as
the command line (argparse's own types and choices for options;
``apply_overrides`` and the agent Config's checks for ``agent_config``), so
a typo fails before anything is built, with the file, key and value named.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Iterable, Mapping

import yaml

from distrl.utils.config import ConfigError, apply_overrides

AGENT_CONFIG_KEY = "agent_config"

# --config does not nest, and --set has agent_config as its file form.
_OPTIONS_NOT_IN_FILES = frozenset({"help", "config", "overrides"})

#: Keys a run's config.json records that are not options: what the runtime chose, not what was asked.
_RECORD_ONLY_KEYS = frozenset({"observation_encoder"})

#: ``DistributedConfig`` fields of a config.json's ``distributed`` block that ``distrl train`` has flags for.
_DISTRIBUTED_OPTIONS = ("num_actors", "learner_device", "time_budget_s", "num_cpus", "address")


def _from_run_record(content: dict[str, Any]) -> dict[str, Any]:
    """A run's ``config.json`` record as config-file keys (a config file passes through unchanged)."""
    content = {key: value for key, value in content.items() if key not in _RECORD_ONLY_KEYS}
    if "progress" in content:
        content["no_progress"] = not content.pop("progress")
    if "checkpoint_replay" in content and not isinstance(content["checkpoint_replay"], str):
        content["checkpoint_replay"] = {None: "auto", True: "on", False: "off"}[content["checkpoint_replay"]]
    distributed = content.pop("distributed", None)
    if isinstance(distributed, Mapping):
        content.setdefault("mode", "local" if distributed.get("address") is None else "cluster")
        for name in _DISTRIBUTED_OPTIONS:
            if distributed.get(name) is not None and not (name == "learner_device" and distributed[name] == "auto"):
                content.setdefault(name, distributed[name])
    return content


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """A loaded config file: checked option values and the agent's fields as override text."""

    path: str
    options: dict[str, Any]
    agent_config: dict[str, str]

    def agent_overrides(self, agent: str) -> list[str]:
        """``agent_config`` as ``key=value`` overrides for ``agent``'s Config.

        They are checked on their own against the agent's defaults here, so an
        error names this file rather than a command-line ``--set``.
        """
        from distrl.agents import get_agent

        try:
            apply_overrides(get_agent(agent).Config(), self.agent_config, owner=f"{agent} config")
        except ValueError as error:
            raise ConfigError(f"{self.path}: {AGENT_CONFIG_KEY}: {error}") from None
        return [f"{key}={text}" for key, text in self.agent_config.items()]


def load_config_file(path: str, actions: Iterable[argparse.Action]) -> ConfigFile:
    """Reads ``path`` and checks it against the ``distrl train`` parser's ``actions``."""
    try:
        with open(path) as f:
            content = yaml.safe_load(f)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values, got {content!r}")

    content = _from_run_record(content)
    by_dest = {action.dest: action for action in actions if action.dest not in _OPTIONS_NOT_IN_FILES}
    options: dict[str, Any] = {}
    agent_config: dict[str, str] = {}
    for key, value in content.items():
        if key == AGENT_CONFIG_KEY:
            agent_config = _agent_config_text(path, value)
        elif key in by_dest:
            options[key] = _option_value(by_dest[key], value, f"{path}: {key}")
        else:
            valid = ", ".join(sorted([*by_dest, AGENT_CONFIG_KEY]))
            raise ConfigError(f"{path}: unknown key {key!r}; valid keys: {valid}")
    return ConfigFile(path=path, options=options, agent_config=agent_config)


def _option_value(action: argparse.Action, value: Any, where: str) -> Any:
    """``value`` converted as argparse converts the option's flag, with its type and choices checked."""
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if value is None and action.default is None:
        return None
    convert = action.type or str
    if isinstance(value, (bool, list, dict)) or value is None:
        raise ConfigError(f"{where} must be a single {convert.__name__} value, got {value!r}")
    try:
        converted = convert(str(value))
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be of type {convert.__name__}, got {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"{where} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted


def _agent_config_text(path: str, section: Any) -> dict[str, str]:
    """The ``agent_config`` section as the text ``--set`` would give, so the field types parse it.

    YAML's own typing is not trusted: ``1e-3`` is a string to YAML 1.1, and a
    float given for an int field must fail as it does on the command line.
    """
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: {AGENT_CONFIG_KEY} must be a mapping of agent config fields, got {section!r}")
    return {str(key): _override_text(value, f"{path}: {AGENT_CONFIG_KEY}.{key}") for key, value in section.items()}


def _override_text(value: Any, where: str) -> str:
    """One YAML value as ``key=value`` text: lists become comma-separated, null becomes none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and not any(isinstance(item, (list, dict)) for item in value):
        return ",".join(_override_text(item, where) for item in value)
    if isinstance(value, (list, dict)):
        raise ConfigError(f"{where} must be a single value or a flat list, got {value!r}")
    return str(value)
