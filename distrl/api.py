"""The Python API: train an agent in a few lines, get the summary and the trained policy back.

    import distrl
    result = distrl.train("dqn", "gym:CartPole-v1", max_env_steps=20_000, learning_rate=1e-3)
    print(result.summary["best_eval_return"], result.run_dir)
    action = result.policy(observation)            # the best-evaluated greedy policy
    policy = distrl.load_policy(result.run_dir)    # the same, later, from the run directory

Keyword arguments are ``ExperimentConfig`` fields (``seed``, ``max_env_steps``,
``eval_every``, ``run_dir``, ...) or fields of the agent's config
(``learning_rate``, ``n_step``, ...; ``distrl config <agent>`` lists them);
anything else raises ``ConfigError`` listing both kinds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from distrl.agents import get_agent
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.saved_policy import SavedPolicy, load_policy
from distrl.utils.config import ConfigError

#: Experiment fields ``train`` takes as keywords (the rest of ``ExperimentConfig`` is built for you).
EXPERIMENT_FIELDS = tuple(
    f.name for f in dataclasses.fields(ExperimentConfig)
    if f.name not in ("agent", "env", "builder", "network_factory", "environment_factory", "agent_config")
)


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the run's ``summary`` (as in ``summary.json``), its ``run_dir``,
    and ``policy``, the best-evaluated greedy policy (the final one when no evaluation ran)."""

    summary: dict[str, Any]
    run_dir: Path
    _policy: SavedPolicy | None = dataclasses.field(default=None, repr=False)

    @property
    def policy(self) -> SavedPolicy:
        """``policy(observation) -> action``, loaded from the run directory on first use."""
        if self._policy is None:
            which = "best" if (self.run_dir / "best_policy.pt").exists() else "final"
            self._policy = load_policy(self.run_dir, which=which)
        return self._policy


def train(
    agent: str,
    env: str,
    mode: str = "debug",
    distributed: Any = None,
    agent_config: Mapping[str, Any] | None = None,
    **fields: Any,
) -> TrainResult:
    """Trains ``agent`` on ``env`` and returns a ``TrainResult``.

    ``mode`` is ``debug`` (one process, no Ray) or ``local`` / ``cluster``
    (the Ray runtime, with ``distributed`` a ``DistributedConfig``; None: its
    defaults, and for ``cluster`` ``address="auto"``). ``fields`` mix
    experiment and agent-config fields (see the module docstring);
    ``agent_config`` gives agent fields explicitly. The progress bar is off
    unless ``progress=True``. Raises ``ConfigError`` for unknown fields or
    bad values before anything runs, ``TrainingError`` when a run fails.
    """
    from distrl.experiments.make import make_experiment_config

    agent_fields = {f.name for f in dataclasses.fields(get_agent(agent).Config)}
    overrides = dict(agent_config or {})
    experiment: dict[str, Any] = {"progress": False}
    for key, value in fields.items():
        if key in EXPERIMENT_FIELDS:
            experiment[key] = value
        elif key in agent_fields:
            overrides[key] = value
        else:
            raise ConfigError(
                f"train: unknown field {key!r}; experiment fields: {', '.join(EXPERIMENT_FIELDS)}; "
                f"{agent} config fields: {', '.join(sorted(agent_fields))}"
            )
    seed = experiment.pop("seed", 0)
    max_env_steps = experiment.pop("max_env_steps", 50_000)
    config = make_experiment_config(agent, env, seed=seed, max_env_steps=max_env_steps,
                                    agent_overrides=overrides, **experiment)
    if mode == "debug":
        from distrl.experiments.local import run_local

        summary = run_local(config)
    elif mode in ("local", "cluster"):
        from distrl.experiments.distributed import DistributedConfig, run_distributed

        if distributed is None:
            distributed = DistributedConfig(address="auto" if mode == "cluster" else None)
        summary = run_distributed(config, distributed)
    else:
        raise ConfigError(f"train: mode must be debug, local or cluster, got {mode!r}")
    return TrainResult(summary, Path(summary["run_dir"]))


__all__ = ["TrainResult", "load_policy", "train"]
