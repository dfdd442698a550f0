"""Builds environments from one string, so configs and the CLI can name any env.

Accepted names:

* ``gym:<id>``: any registered gymnasium id (``gym:CartPole-v1``,
  ``gym:Pendulum-v1``), built with ``gymnasium.make`` so its registered
  ``TimeLimit`` applies, then adapted by ``GymnasiumToDmEnv``.
* ``gridworld:<task>[?option=value&...]``: the tutorial GridWorld, ``task``
  one of ``simple``, ``obstacle``, ``random_goal``; options ``observation``
  (``state_index``, ``agent_onehot``, ``grid``, ``agent_goal_pos``; default
  ``agent_goal_pos``) and ``max_episode_len`` (steps, or ``none``; default 200).
* ``<module.path>:<factory>``: ``factory(seed=seed)`` must return a
  ``dm_env.Environment``.

Every environment is wrapped in ``ValidatingWrapper`` unless ``validate=False``.
"""

from __future__ import annotations

import functools
import importlib
import urllib.parse

import dm_env
import gymnasium

from distrl.envs.gridworld import TASKS, GridWorld, ObservationType
from distrl.envs.gym_adapter import GymnasiumToDmEnv
from distrl.envs.validation import ValidatingWrapper

ACCEPTED_FORMS = (
    "'gym:<gymnasium id>' (e.g. 'gym:CartPole-v1')",
    "'gridworld:<task>[?observation=<type>&max_episode_len=<steps|none>]' "
    f"(task one of {', '.join(TASKS)}; type one of "
    f"{', '.join(t.value for t in ObservationType)})",
    "'<module.path>:<factory>' (factory(seed=...) returns a dm_env.Environment)",
)

# Solved-at returns for gymnasium tasks whose registration has no reward_threshold.
# Pendulum-v1: -200 is the level DDPG-class agents reach and the usual benchmark bar.
DEFAULT_REWARD_THRESHOLDS = {"Pendulum-v1": -200.0}

GRIDWORLD_DEFAULT_OBSERVATION = ObservationType.AGENT_GOAL_POS
GRIDWORLD_DEFAULT_MAX_EPISODE_LEN = 200


def _name_error(name: str, problem: str) -> ValueError:
    forms = "\n  ".join(ACCEPTED_FORMS)
    return ValueError(f"environment name {name!r}: {problem}. Accepted forms:\n  {forms}")


def make_environment(name: str, seed: int, validate: bool = True) -> dm_env.Environment:
    """Builds the environment called ``name`` (see the module docstring), seeded with ``seed``."""
    prefix, separator, rest = name.partition(":")
    if not separator or not prefix or not rest:
        raise _name_error(name, "expected '<kind>:<what>'")
    if prefix == "gym":
        environment = _make_gym(name, rest, seed)
    elif prefix == "gridworld":
        environment = _make_gridworld(name, rest, seed)
    else:
        environment = _make_from_factory(name, prefix, rest, seed)
    return ValidatingWrapper(environment, name) if validate else environment


def _make_gym(name: str, env_id: str, seed: int) -> GymnasiumToDmEnv:
    try:
        gym_env = gymnasium.make(env_id)
    except gymnasium.error.Error as error:
        raise _name_error(name, f"gymnasium cannot make {env_id!r} ({error})") from error
    try:
        return GymnasiumToDmEnv(gym_env, seed=seed)
    except Exception:
        gym_env.close()
        raise


def _make_gridworld(name: str, spec: str, seed: int) -> GridWorld:
    task, _, query = spec.partition("?")
    if task not in TASKS:
        raise _name_error(name, f"unknown gridworld task {task!r}")
    observation = GRIDWORLD_DEFAULT_OBSERVATION
    max_episode_len: int | None = GRIDWORLD_DEFAULT_MAX_EPISODE_LEN
    try:
        options = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as error:
        raise _name_error(name, f"malformed options {query!r} ({error})") from error
    seen: set[str] = set()
    for key, value in options:
        if key in seen:
            raise _name_error(name, f"gridworld option {key!r} given twice")
        seen.add(key)
        if key == "observation":
            try:
                observation = ObservationType(value.lower())
            except ValueError:
                raise _name_error(name, f"unknown gridworld observation type {value!r}") from None
        elif key == "max_episode_len":
            max_episode_len = _parse_max_episode_len(name, value)
        else:
            raise _name_error(
                name,
                f"unknown gridworld option {key!r} (options: observation, max_episode_len)",
            )
    return GridWorld.from_task(
        task, observation_type=observation, max_episode_len=max_episode_len, seed=seed
    )


def _parse_max_episode_len(name: str, value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise _name_error(
            name, f"max_episode_len must be a positive integer or 'none', got {value!r}"
        )
    return steps


def _make_from_factory(
    name: str, module_path: str, attribute: str, seed: int
) -> dm_env.Environment:
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        # Only a missing module named in ``name`` is a naming problem; a missing
        # dependency inside an existing module is re-raised as it is.
        missing = error.name or ""
        if not (module_path == missing or module_path.startswith(missing + ".")):
            raise
        raise _name_error(name, f"no module named {module_path!r}") from error
    try:
        factory = functools.reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise _name_error(name, f"module {module_path!r} has no attribute {attribute!r}") from None
    if not callable(factory):
        raise _name_error(name, f"{module_path}:{attribute} is not callable")
    environment = factory(seed=seed)
    if not isinstance(environment, dm_env.Environment):
        raise TypeError(
            f"environment factory {module_path}:{attribute} returned "
            f"{type(environment).__qualname__}, expected a dm_env.Environment"
        )
    return environment


def reward_threshold(environment: dm_env.Environment) -> float | None:
    """The return at which the task counts as solved, or None when it has none.

    Wrappers derived from ``EnvironmentWrapper`` forward the attribute to the
    environment they wrap, so this finds the innermost env's threshold unless a
    wrapper overrides it.
    """
    threshold = getattr(environment, "reward_threshold", None)
    if threshold is None:
        threshold = DEFAULT_REWARD_THRESHOLDS.get(getattr(environment, "name", None))
    return threshold
