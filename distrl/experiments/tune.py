"""Hyperparameter sweeps on Ray Tune, with early stopping that really stops training.

``make_trainable(agent, env, ...)`` returns a Tune function trainable: each
trial builds its experiment with ``make_experiment_config`` (the trial's
``seed`` and agent fields from the Tune config, over ``base_overrides``) and
runs it with ``run_local``, reporting every greedy evaluation to Tune through
``ExperimentConfig.on_evaluation``. ``run_sweep`` runs one with an ASHA
scheduler and returns the ``ResultGrid``.

Each trial runs the single-process runtime (``run_local``) in its own Ray
worker process: a sweep's parallelism is its trials. Nesting
``run_distributed`` inside a trial is not supported (not needed so far).

How a stop travels (Ray 2.52+): a function trainable's ``tune.report`` blocks
until the controller has a decision on the result. When the scheduler (ASHA)
or a stopper says STOP, Tune's ``FunctionTrainable.cleanup`` wakes the blocked
``tune.report`` with ``SystemExit(0)``. The reporting callback catches it and
returns True, so ``run_local`` ends right there, as at its budget (no further
env steps; final checkpoint and ``summary.json`` with status ``completed``).
Tune ends the trial's process as soon as ``cleanup`` returns, which does not
wait for the trainable's thread, so ``with_clean_stop`` (used by
``run_sweep``) makes ``cleanup`` join it first; without it a stopped trial
still takes no further steps, but may die before writing its summary.

Run directories go to ``<trial directory>/distrl/`` (the trial directory in
Tune's storage when that is a local filesystem, else Tune's trial directory or
the trial's working directory); every report carries it as ``run_dir``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import distrl

#: Seconds Tune's ``cleanup`` of a stopped trial waits for its run to write its final files.
STOP_TIMEOUT_S = 120.0

#: Folder, inside a trial's directory, that holds its run directory.
RUNS_FOLDER = "distrl"


def _plain(value: Any) -> Any:
    """A Tune-sampled value as a plain Python value (numpy scalars -> int / float / bool)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "shape", None) == () else value


def _override_dict(overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """``base_overrides`` (a mapping or ``key=value`` strings) as a dict; values stay strings
    or objects, and ``apply_overrides`` parses and validates them by field type."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    pairs: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise ValueError(f"override {item!r} must look like key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _trial_directory() -> Path:
    """Where this trial's files belong: Tune's storage trial directory when it is local
    (what ``Result.path`` names), else Tune's trial directory, else the working directory."""
    from ray import tune

    context = tune.get_context()
    try:  # DeveloperAPI (ray.train StorageContext); any failure falls through to the public API.
        storage = context.get_storage()
        if storage.storage_filesystem.type_name == "local":
            return Path(storage.trial_fs_path)
    except Exception:  # noqa: BLE001
        pass
    try:
        return Path(context.get_trial_dir())
    except Exception:  # noqa: BLE001
        return Path.cwd()


def make_trainable(
    agent: str, env: str, base_overrides: Mapping[str, Any] | Iterable[str] = (), **experiment_fields: Any
) -> Callable[[dict], None]:
    """Returns a function trainable ``trainable(tune_config)`` for ``tune.Tuner``.

    The trial's experiment is ``make_experiment_config(agent, env,
    seed=tune_config.get("seed", 0), agent_overrides={**base_overrides,
    **agent fields of tune_config}, **experiment_fields)`` (e.g.
    ``max_env_steps``, ``eval_every``, ``eval_episodes``); a key of
    ``tune_config`` that is neither ``seed`` nor an agent field raises
    ``ConfigError``. ``run_dir`` (default: the trial directory) is taken
    relative to the trial directory; ``progress`` defaults to False.

    Every evaluation is reported with ``tune.report``: ``eval_return`` (the
    greedy mean return), ``eval_return_std``, ``eval_length``,
    ``eval_episodes_cut``, ``env_steps``, ``learner_steps``,
    ``run_wall_clock_s`` and ``run_dir`` (Tune adds ``training_iteration``,
    one per evaluation). When Tune stops the trial, the run ends at that
    evaluation (see the module docstring); pass the trainable through
    ``with_clean_stop`` so Tune waits for its final files.
    """
    from distrl.agents import get_agent
    from distrl.utils.config import ConfigError

    agent_fields = {field.name for field in dataclasses.fields(get_agent(agent).Config)}
    base = _override_dict(base_overrides)
    fields = dict(experiment_fields)

    def trainable(tune_config: dict) -> None:
        from ray import tune

        from distrl.experiments.local import run_local
        from distrl.experiments.make import make_experiment_config

        unknown = sorted(set(tune_config) - agent_fields - {"seed"})
        if unknown:
            raise ConfigError(
                f"Tune config keys {unknown} are neither 'seed' nor {agent} config fields "
                f"({', '.join(sorted(agent_fields))})")
        overrides = {**base, **{k: _plain(v) for k, v in tune_config.items() if k in agent_fields}}
        run_root = _trial_directory() / RUNS_FOLDER
        experiment = {"progress": False, **fields}
        experiment["run_dir"] = str(run_root / experiment.get("run_dir", ""))
        run_root = Path(experiment["run_dir"])
        state: dict[str, Any] = {"run_dir": None}

        def report(record: Mapping[str, Any]) -> bool:
            if state["run_dir"] is None:  # The run's directory is the one run_local made under run_root.
                made = sorted(run_root.glob("*/config.json"), key=os.path.getmtime)
                state["run_dir"] = str(made[-1].parent) if made else str(run_root)
            metrics = {
                "eval_return": float(record["return_mean"]),
                "eval_return_std": float(record["return_std"]),
                "eval_length": float(record["length_mean"]),
                "eval_episodes_cut": int(record["episodes_cut"]),
                "env_steps": int(record["env_steps"]),
                "learner_steps": int(record["learner_steps"]),
                "run_wall_clock_s": float(record["wall_clock_s"]),
                "run_dir": state["run_dir"],
            }
            try:
                tune.report(metrics)
            except SystemExit as stop:  # Tune stopped the trial while report waited for its decision.
                if stop.code not in (0, None):
                    raise
                return True
            return False

        config = make_experiment_config(
            agent, env, seed=int(_plain(tune_config.get("seed", 0))), agent_overrides=overrides,
            on_evaluation=report, **experiment,
        )
        run_local(config)

    trainable.__name__ = f"distrl_{agent}"
    trainable.__qualname__ = trainable.__name__
    return trainable


def with_clean_stop(trainable: Callable[[dict], None], stop_timeout_s: float = STOP_TIMEOUT_S) -> type:
    """``trainable`` as a Tune ``Trainable`` class whose ``cleanup`` (run when Tune stops or
    ends the trial, before it ends the trial's process) waits up to ``stop_timeout_s`` for
    the function to return, so a stopped run writes its checkpoint and ``summary.json``.

    Tune's own ``FunctionTrainable.cleanup`` wakes the function (a blocked
    ``tune.report`` raises ``SystemExit(0)``) but does not wait for it. The
    function's thread comes from Tune's session (a DeveloperAPI); should a
    Ray version lack it, the class behaves as the plain function trainable.
    """
    from ray.tune.trainable.function_trainable import wrap_function

    base = wrap_function(trainable)

    class CleanStopTrainable(base):  # type: ignore[misc, valid-type]
        def cleanup(self) -> None:
            try:
                from ray.train._internal.session import get_session

                thread = get_session().training_thread
            except Exception:  # noqa: BLE001 - an internal API that may move.
                thread = None
            super().cleanup()
            if thread is not None and thread.is_alive():
                thread.join(timeout=stop_timeout_s)

    CleanStopTrainable.__name__ = CleanStopTrainable.__qualname__ = getattr(trainable, "__name__", "trainable")
    return CleanStopTrainable


def _init_ray(num_cpus: int | None) -> bool:
    """Starts a private local Ray on 127.0.0.1 unless one is initialised; True when it started one.
    Trial processes must import distrl: the folder holding the package goes on PYTHONPATH."""
    import ray

    if ray.is_initialized():
        return False
    package_root = str(Path(distrl.__file__).resolve().parent.parent)
    python_path = os.environ.get("PYTHONPATH", "")
    if package_root not in python_path.split(os.pathsep):
        os.environ["PYTHONPATH"] = package_root + (os.pathsep + python_path if python_path else "")
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
             _node_ip_address="127.0.0.1")
    return True


def run_sweep(
    agent: str,
    env: str,
    param_space: Mapping[str, Any],
    num_samples: int,
    max_env_steps: int,
    eval_every: int,
    metric: str = "eval_return",
    mode: str = "max",
    grace_period: int | None = None,
    reduction_factor: float = 2,
    storage_path: str | os.PathLike = "runs/tune",
    resources_per_trial: Mapping[str, float] | None = None,
    seed: int = 0,
    num_cpus: int | None = None,
    base_overrides: Mapping[str, Any] | Iterable[str] = (),
    name: str | None = None,
    scheduler: Any = None,
    verbose: int | None = None,
    **experiment_fields: Any,
):
    """Samples ``param_space`` (agent fields, and ``seed``: default ``seed``) ``num_samples``
    times, trains each trial with ``run_local`` to ``max_env_steps``, evaluating every
    ``eval_every`` env steps, and returns Tune's ``ResultGrid``.

    ASHA (``time_attr="env_steps"``, ``max_t=max_env_steps``) stops trials
    whose ``metric`` trails at a rung: rungs at ``grace_period`` (default:
    ``eval_every``, the first evaluation) times powers of
    ``reduction_factor``. ``scheduler`` replaces it (any Tune scheduler).
    Results go to ``storage_path/name`` (default name:
    ``{agent}_{env}_{time}``); each trial's run directory is its result's
    ``metrics["run_dir"]``. Each trial gets ``resources_per_trial``
    (default ``{"cpu": 1}``). Starts a private local Ray with ``num_cpus``
    (default: all) on 127.0.0.1 unless Ray is initialised, and shuts down
    only a Ray it started. ``experiment_fields`` go to
    ``make_experiment_config`` (e.g. ``eval_episodes``).
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    if scheduler is None:
        scheduler = ASHAScheduler(
            time_attr="env_steps", max_t=max_env_steps, grace_period=grace_period or eval_every,
            reduction_factor=reduction_factor,
        )
    trainable = make_trainable(
        agent, env, base_overrides, max_env_steps=max_env_steps, eval_every=eval_every, **experiment_fields
    )
    resources = dict(resources_per_trial or {"cpu": 1})
    if name is None:
        safe_env = "".join(c if c.isalnum() or c in "._-" else "_" for c in env).strip("_")
        name = f"{agent}_{safe_env}_{time.strftime('%Y%m%d-%H%M%S')}"
    started = _init_ray(num_cpus)
    try:
        tuner = tune.Tuner(
            tune.with_resources(with_clean_stop(trainable), resources),
            param_space={"seed": seed, **param_space},
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode, num_samples=num_samples, scheduler=scheduler, reuse_actors=False),
            run_config=tune.RunConfig(name=name, storage_path=str(Path(storage_path).resolve()), verbose=verbose),
        )
        return tuner.fit()
    finally:
        if started:
            ray.shutdown()
