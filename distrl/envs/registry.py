"""Builds environments from one string, so configs and the CLI can name any env.

Accepted names:

* ``gym:<id>``: any registered gymnasium id (``gym:CartPole-v1``,
  ``gym:Pendulum-v1``), built with ``gymnasium.make`` so its registered
  ``TimeLimit`` applies, then adapted by ``GymnasiumToDmEnv``. MuJoCo ids
  (``gym:HalfCheetah-v5``, ``gym:Hopper-v5``, ...) need the ``mujoco`` extra.
  ``gym:ALE/<Game>-v5`` (``ale-py``, the ``atari`` extra) is the raw
  emulator, RGB frames ``uint8 [210, 160, 3]``, gymnasium's v5 defaults
  (frame skip 4, sticky actions 0.25), unclipped rewards and no
  preprocessing; for training use ``atari:<Game>``.
* ``atari:<Game>[?option=value&...]``: an Atari 2600 game with the DQN
  preprocessing (``distrl.envs.atari.AtariEnvironment``: uint8
  ``[4, 84, 84]`` observations, sign-clipped rewards, the game score as
  ``episode_score``, a life loss as a discount-0 MID step). Options
  ``sticky_actions`` (``true``/``false``, default false), ``full_action_space``
  (default false), ``noop_max`` (default 30) and ``frame_stack`` (default 4).
* ``dmc:<domain>-<task>[?option=value&...]``: a DeepMind Control Suite task
  (``distrl.envs.dmc.DmControlEnvironment``: dict observations of float32
  arrays, float32 actions), e.g. ``dmc:cartpole-swingup``,
  ``dmc:walker-walk``. Options ``action_repeat`` (default 1), ``pixels``
  (``true``/``false``, default false: ``{"pixels": uint8 [84, 84, 3]}``) and
  ``frame_stack`` (pixels only, default 1).
* ``gridworld:<task>[?option=value&...]``: the tutorial GridWorld, ``task``
  one of ``simple``, ``obstacle``, ``random_goal``; options ``observation``
  (``state_index``, ``agent_onehot``, ``grid``, ``agent_goal_pos``; default
  ``agent_goal_pos``) and ``max_episode_len`` (steps, or ``none``; default 200).
* ``<module.path>:<factory>``: ``factory(seed=seed)`` must return a
  ``dm_env.Environment``.

A missing optional dependency raises ``ImportError`` naming the extra to
install (e.g. ``atari:Pong needs ale-py: pip install -e '.[atari]'``); a
malformed name, an unknown game, task or option raises ``ValueError``.

Every environment is wrapped in ``ValidatingWrapper`` unless ``validate=False``.
"""

from __future__ import annotations

import functools
import importlib
import urllib.parse
from collections.abc import Callable
from typing import Any

import dm_env
import gymnasium

from distrl.envs.atari import AtariEnvironment, import_ale
from distrl.envs.dmc import DmControlEnvironment
from distrl.envs.gridworld import TASKS, GridWorld, ObservationType
from distrl.envs.gym_adapter import GymnasiumToDmEnv
from distrl.envs.validation import ValidatingWrapper

ACCEPTED_FORMS = (
    "'gym:<gymnasium id>' (e.g. 'gym:CartPole-v1', 'gym:HalfCheetah-v5', 'gym:ALE/Pong-v5')",
    (
        "'atari:<Game>[?sticky_actions=<true|false>&full_action_space=<true|false>"
        "&noop_max=<n>&frame_stack=<n>]' (e.g. 'atari:Pong', 'atari:Breakout')"
    ),
    (
        "'dmc:<domain>-<task>[?action_repeat=<n>&pixels=<true|false>&frame_stack=<n>]' "
        "(e.g. 'dmc:cartpole-swingup', 'dmc:walker-walk')"
    ),
    "'gridworld:<task>[?observation=<type>&max_episode_len=<steps|none>]' "
    f"(task one of {', '.join(TASKS)}; type one of "
    f"{', '.join(t.value for t in ObservationType)})",
    "'<module.path>:<factory>' (factory(seed=...) returns a dm_env.Environment)",
)

# Solved-at returns for gymnasium tasks whose registration has no reward_threshold.
# Pendulum-v1: -200 is the level DDPG-class agents reach and the usual benchmark bar.
DEFAULT_REWARD_THRESHOLDS = {"Pendulum-v1": -200.0}

MUJOCO_INSTALL_HINT = "pip install -e '.[mujoco]'"

GRIDWORLD_DEFAULT_OBSERVATION = ObservationType.AGENT_GOAL_POS
GRIDWORLD_DEFAULT_MAX_EPISODE_LEN = 200


def _name_error(name: str, problem: str) -> ValueError:
    forms = "\n  ".join(ACCEPTED_FORMS)
    return ValueError(f"environment name {name!r}: {problem}. Accepted forms:\n  {forms}")


def make_environment(
    name: str, seed: int, validate: bool = True, render_mode: str | None = None
) -> dm_env.Environment:
    """Builds the environment called ``name`` (see the module docstring), seeded with ``seed``.

    ``render_mode`` (``rgb_array`` or ``human``) is passed to gymnasium and
    ALE environments, which render only when made with one; GridWorld and
    dm_control tasks render ``rgb_array`` frames whatever it is
    (``environment.render()``).
    """
    prefix, separator, rest = name.partition(":")
    if not separator or not prefix or not rest:
        raise _name_error(name, "expected '<kind>:<what>'")
    if prefix == "gym":
        environment = _make_gym(name, rest, seed, render_mode)
    elif prefix == "gridworld":
        environment = _make_gridworld(name, rest, seed)
    elif prefix == "atari":
        environment = _make_atari(name, rest, seed, render_mode)
    elif prefix == "dmc":
        environment = _make_dmc(name, rest, seed)
    else:
        environment = _make_from_factory(name, prefix, rest, seed)
    return ValidatingWrapper(environment, name) if validate else environment


def _make_gym(name: str, env_id: str, seed: int, render_mode: str | None = None) -> GymnasiumToDmEnv:
    if env_id.startswith("ALE/"):
        import_ale(name)  # Registers the ALE namespace with gymnasium.
    try:
        gym_env = gymnasium.make(env_id, render_mode=render_mode) if render_mode else gymnasium.make(env_id)
    except (gymnasium.error.Error, ModuleNotFoundError) as error:
        missing = isinstance(error, (gymnasium.error.DependencyNotInstalled, ModuleNotFoundError))
        if missing and _is_mujoco(env_id):
            raise ImportError(f"{name} needs mujoco and imageio: {MUJOCO_INSTALL_HINT}") from error
        if isinstance(error, ModuleNotFoundError):
            raise
        raise _name_error(name, f"gymnasium cannot make {env_id!r} ({error})") from error
    try:
        return GymnasiumToDmEnv(gym_env, seed=seed)
    except Exception:
        gym_env.close()
        raise


def _is_mujoco(env_id: str) -> bool:
    """Whether ``env_id`` is one of gymnasium's MuJoCo environments (the ``mujoco`` extra)."""
    entry_point = getattr(gymnasium.envs.registry.get(env_id), "entry_point", "")
    return isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.mujoco")


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


def _bool_option(value: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _int_option(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
        return number

    return parse


ATARI_OPTIONS: dict[str, Callable[[str], Any]] = {
    "sticky_actions": _bool_option,
    "full_action_space": _bool_option,
    "noop_max": _int_option(0),
    "frame_stack": _int_option(1),
}
DMC_OPTIONS: dict[str, Callable[[str], Any]] = {
    "action_repeat": _int_option(1),
    "pixels": _bool_option,
    "frame_stack": _int_option(1),
}


def _parse_options(
    name: str, query: str, kind: str, parsers: dict[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """Parses ``key=value&...`` with ``parsers[key]``; unknown, repeated or bad options raise."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as error:
        raise _name_error(name, f"malformed options {query!r} ({error})") from error
    unknown = [key for key, _ in pairs if key not in parsers]
    if unknown:
        raise _name_error(
            name,
            f"unknown {kind} option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} (options: {', '.join(parsers)})",
        )
    options: dict[str, Any] = {}
    for key, value in pairs:
        if key in options:
            raise _name_error(name, f"{kind} option {key!r} given twice")
        try:
            options[key] = parsers[key](value)
        except ValueError as error:
            raise _name_error(name, f"{kind} option {key!r}: {error}") from None
    return options


def _make_atari(name: str, spec: str, seed: int, render_mode: str | None = None) -> AtariEnvironment:
    game, _, query = spec.partition("?")
    if not game:
        raise _name_error(name, "expected 'atari:<Game>'")
    options = _parse_options(name, query, "atari", ATARI_OPTIONS)
    try:
        return AtariEnvironment(game, seed, render_mode=render_mode, **options)
    except gymnasium.error.Error as error:
        raise _name_error(name, f"gymnasium cannot make 'ALE/{game}-v5' ({error})") from error


def _make_dmc(name: str, spec: str, seed: int) -> DmControlEnvironment:
    task_name, _, query = spec.partition("?")
    domain, separator, task = task_name.partition("-")
    if not (domain and separator and task):
        raise _name_error(name, "expected 'dmc:<domain>-<task>' (e.g. 'dmc:cartpole-swingup')")
    options = _parse_options(name, query, "dmc", DMC_OPTIONS)
    try:
        return DmControlEnvironment(domain, task, seed, **options)
    except ValueError as error:
        raise _name_error(name, str(error)) from error


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
