"""A trained policy loaded back from a run directory: ``load_policy(path)(observation) -> action``.

A run directory holds what a policy needs: ``config.json`` (agent, env,
agent config), ``best_policy.pt`` (the actor weights of the best evaluation)
and ``checkpoints/`` (the learner's state, newest last). ``load_policy`` rebuilds
the agent's networks from the config and the environment's spec, loads the
weights and wraps the agent's own greedy actor (``Builder.make_policy(...,
evaluation=True)`` and ``make_actor``), so a loaded policy acts exactly as
the evaluations of the run did. Files are read with
``torch.load(weights_only=True)``: nothing pickled is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import dm_env
import numpy as np
import torch

from distrl.core import VariableSource
from distrl.experiments.checkpoints import CHECKPOINTS_DIR, LEARNER_FILE
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.evaluation import BEST_POLICY_FILE, EvaluationResult, evaluate
from distrl.specs import make_environment_spec
from distrl.types import Versioned
from distrl.utils.checkpointing import load_checkpoint
from distrl.utils.config import ConfigError
from distrl.utils.counting import Counter
from distrl.utils.seeding import derive_seed

#: File names in a run directory.
CONFIG_FILE = "config.json"
#: What ``load_policy(which=...)`` accepts: the best-evaluated weights or the final learner state.
WHICH = ("best", "final")


class _FixedVariables(VariableSource):
    """A variable source that always serves one set of loaded parameters."""

    def __init__(self, variables: Versioned[Mapping[str, Any]]) -> None:
        self._variables = variables

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        missing = set(names) - set(self._variables.value)
        if missing:
            raise KeyError(f"the saved policy has no variables {sorted(missing)}; it has {sorted(self._variables.value)}")
        return Versioned(self._variables.version, {name: self._variables.value[name] for name in names})


class SavedPolicy:
    """The greedy policy of a finished run: call it on one observation to get one action.

    Attributes: ``agent``, ``env`` (the environment name it was trained on),
    ``seed``, ``version`` (learner steps of the weights), ``which`` (best or
    final), ``run_dir`` and ``config`` (the rebuilt ``ExperimentConfig``).
    """

    def __init__(self, config: ExperimentConfig, variables: Versioned[Mapping[str, Any]], which: str,
                 run_dir: Path) -> None:
        self.config = config
        self.agent, self.env, self.seed = config.agent, config.env, config.seed
        self.version = int(variables.version)
        self.which = which
        self.run_dir = run_dir
        environment = config.environment_factory(derive_seed(config.seed, "eval"))
        try:
            spec = make_environment_spec(environment)
        finally:
            environment.close()
        networks = config.network_factory(spec)
        builder = config.builder
        policy = builder.make_policy(networks, evaluation=True, seed=derive_seed(config.seed, "eval_policy"))
        self._actor = builder.make_actor(policy, networks, _FixedVariables(variables), None)
        self._actor.update(wait=True)

    def __call__(self, observation: Any) -> Any:
        """The greedy action for one (unbatched) observation, as the environment's action spec has it."""
        return self._actor.select_action(observation)

    def reset(self, first_timestep: dm_env.TimeStep) -> None:
        """Starts an episode (policies with per-episode state need it; the greedy ones here do not)."""
        self._actor.observe_first(first_timestep)

    def make_environment(self, seed: int | None = None, env: str | None = None, **options: Any) -> dm_env.Environment:
        """The environment the policy was trained on (or ``env``), seeded as the run's evaluations
        were (``seed``: the run's seed by default); ``options`` go to ``make_environment``."""
        from distrl.envs import make_environment

        seed = self.seed if seed is None else seed
        return make_environment(env or self.env, derive_seed(seed, "eval"), **options)

    def evaluate(self, episodes: int | None = None, seed: int | None = None, env: str | None = None,
                 max_episode_steps: int | None = None, video: str | os.PathLike | None = None,
                 render_mode: str | None = None) -> EvaluationResult:
        """Greedy episodes as the run evaluated them: by default the run's seed, its number of
        evaluation episodes and its step cap, so the result repeats the recorded evaluation.

        ``video`` (a folder) records every episode as an mp4 (``VideoRecorder``);
        ``render_mode='human'`` shows gymnasium and ALE environments in a window.
        """
        if video is not None:
            render_mode = "rgb_array"
        environment = self.make_environment(seed, env, render_mode=render_mode)
        if video is not None:
            from distrl.experiments.video import VideoRecorder

            environment = VideoRecorder(environment, video)
        try:
            return evaluate(
                environment, self._actor, episodes or self.config.eval_episodes,
                max_episode_steps if max_episode_steps is not None else self.config.eval_max_episode_steps,
            )
        finally:
            environment.close()


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.json``; raises ConfigError naming the file when it is missing or unreadable."""
    path = run_dir / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: a run directory holds config.json next to its checkpoints") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None


def experiment_from_record(record: Mapping[str, Any], **fields: Any) -> ExperimentConfig:
    """The ``ExperimentConfig`` a ``config.json`` record describes (agent, env, seed, agent
    config, evaluation settings); ``fields`` override experiment fields."""
    from distrl.experiments.make import make_experiment_config

    experiment = {
        "eval_episodes": record.get("eval_episodes", 10),
        "eval_max_episode_steps": record.get("eval_max_episode_steps"),
        "reward_threshold": record.get("reward_threshold"),
        "progress": False,
        **fields,
    }
    return make_experiment_config(
        record["agent"], record["env"], seed=int(record.get("seed", 0)),
        max_env_steps=int(record.get("max_env_steps", 1)), agent_overrides=record.get("agent_config") or {},
        **experiment,
    )


def _learner_variables(config: ExperimentConfig, checkpoint: Mapping[str, Any]) -> Versioned[Mapping[str, Any]]:
    """The actor variables in a final learner checkpoint: the learner is rebuilt, restored and
    asked for the builder's ``variable_names``, as actors ask it during training."""
    environment = config.environment_factory(derive_seed(config.seed, "eval"))
    try:
        spec = make_environment_spec(environment)
    finally:
        environment.close()
    learner = config.builder.make_learner(
        config.network_factory(spec), iter(()), None, Counter(), None, torch.device("cpu")
    )
    learner.restore(checkpoint["learner"])
    return learner.get_variables(config.builder.variable_names)


def load_policy(path: str | os.PathLike, which: str = "best", **experiment_fields: Any) -> SavedPolicy:
    """Loads the greedy policy of a run: ``path`` is a run directory, or a ``best_policy.pt`` /
    checkpoint's ``learner.pt`` (``RUN_DIR/checkpoints/ckpt-N/learner.pt``) inside one.

    ``which`` picks ``best`` (``best_policy.pt``, the weights of the best
    evaluation; what to keep) or ``final`` (the newest intact checkpoint in
    ``RUN_DIR/checkpoints``: the learner at the end)
    for a run directory; a file path decides by itself.
    ``experiment_fields`` override the rebuilt experiment's fields (e.g.
    ``eval_episodes``). Raises ConfigError naming the file for a missing or
    malformed run directory or checkpoint.
    """
    path = Path(path)
    if which not in WHICH:
        raise ConfigError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
    if path.is_dir() and which == "final":
        from distrl.utils.checkpointing import CheckpointStore

        folder, _ = CheckpointStore(path / CHECKPOINTS_DIR).latest_intact()
        if folder is None:
            raise ConfigError(f"{path / CHECKPOINTS_DIR} holds no intact checkpoint")
        run_dir, file = path, folder / LEARNER_FILE
    elif path.is_dir():
        run_dir, file = path, path / BEST_POLICY_FILE
    elif path.parent.parent.name == CHECKPOINTS_DIR:  # RUN_DIR/checkpoints/ckpt-N/learner.pt
        run_dir, file, which = path.parent.parent.parent, path, "final"
    else:
        run_dir, file = path.parent, path
        which = "final" if path.name == LEARNER_FILE else "best"
    if not file.exists():
        hint = " (no evaluation has finished yet?)" if file.name == BEST_POLICY_FILE else ""
        raise ConfigError(f"{file} not found{hint}")
    config = experiment_from_record(read_run_config(run_dir), **experiment_fields)
    try:
        state = load_checkpoint(file)
    except Exception as error:  # noqa: BLE001 - torch raises several types for a damaged file.
        raise ConfigError(f"{file} cannot be loaded: {type(error).__name__}: {error}") from error
    if "variables" in state:
        variables = Versioned(int(state.get("version", -1)), {
            name: {key: np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
                   for key, value in params.items()}
            for name, params in state["variables"].items()
        })
    elif "learner" in state:
        variables = _learner_variables(config, state)
    else:
        raise ConfigError(f"{file} holds neither policy variables nor a learner state: keys {sorted(state)}")
    return SavedPolicy(config, variables, which, run_dir)
