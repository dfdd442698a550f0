"""The driver: ``run_distributed`` starts a run's Ray actors, runs its poll loop, and stops them.

``run_distributed`` checks the config before Ray starts, starts or attaches
to Ray, creates the run directory and the actors (``RunComponents``) and
hands them to the ``RunLoop`` (``run_loop.py``: polls, evaluations,
checkpoints, the summary); whatever happens, it kills the run's actors and
shuts down the Ray it started. ``run_distributed(resume=RUN_DIR)``
continues a run from its newest intact checkpoint: the learner and the
replay server restore it, the actors take back their exploration state,
and the env-step count, evaluations and ``metrics.csv`` continue.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import ray
import torch

from distrl.errors import TrainingError
from distrl.experiments.checkpoints import RUN_FILE, report_skipped, resume_checkpoint
from distrl.experiments.config import ExperimentConfig, build_networks, experiment_record
from distrl.experiments.distributed.components import RunComponents, actor_count
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.monitoring import PollState
from distrl.experiments.distributed.ray_setup import init_ray, resolve_learner_device
from distrl.experiments.distributed.run_loop import RunLoop
from distrl.experiments.reporting import RunRecorder
from distrl.specs import make_environment_spec
from distrl.utils.config import ConfigError, require
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.utils.signals import RunInterrupted, reclaim_signals
from distrl.utils.state_files import load_state


def run_distributed(
    config: ExperimentConfig,
    dist: DistributedConfig | None = None,
    on_poll: Callable[[PollState], bool | None] | None = None,
    resume: str | None = None,
) -> dict[str, Any]:
    """Runs ``config`` on Ray until its env-step budget (or ``dist.time_budget_s``) and returns the summary.

    ``on_poll`` (for tests and tools) is called after every poll with a
    ``PollState``; when it returns True the run ends there, as when the
    budget is reached. The summary has the keys of ``run_local``'s plus
    ``distributed`` (throughput, lags, waits, restarts, env failures,
    checkpoints, per-actor exploration, the bottleneck) and ``replay`` (the
    table's counters). ``resume`` (a run directory) continues that run from
    its newest intact checkpoint (``config`` must be the run's, with any
    budget); it is not an exact repeat, as no distributed run is.

    Raises ConfigError (a ValueError) for an ``envs_per_actor`` other than
    the builder's and for settings that cannot learn in the budget
    (``Builder.check_budget``, for the number of actors the run will have)
    before Ray starts or, when that number depends on the cluster, before
    the run directory exists, ``CheckpointError`` when ``resume`` has
    no intact checkpoint, ConnectionError when no cluster answers at
    ``dist.address``, ValueError when the cluster cannot serve the config
    (``learner_device='cuda'`` without a GPU), ``RunInterrupted`` after a
    SIGINT/SIGTERM under ``graceful_stop`` (final checkpoint and summary
    written), and ``TrainingError`` (from the original error, after writing
    a summary with status ``failed`` and, when the learner can still write
    one, a checkpoint) when the run fails once started.
    """
    dist = dist if dist is not None else DistributedConfig()
    folder, run_state = None, None
    if resume is not None:
        folder, skipped = resume_checkpoint(config, resume)
        report_skipped(skipped)
        run_state = load_state(folder / RUN_FILE)
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    builder = config.builder
    if dist.envs_per_actor is not None:
        require(dist.envs_per_actor == builder.envs_per_actor, "DistributedConfig", "envs_per_actor",
                dist.envs_per_actor,
                f"equal the agent's envs_per_actor ({builder.envs_per_actor}); set it in the agent config instead")
    if dist.num_actors is not None:
        builder.with_num_actors(dist.num_actors).check_budget(config.max_env_steps)
    probe = config.environment_factory(derive_seed(config.seed, "eval"))
    spec = make_environment_spec(probe)
    probe.close()
    build_networks(config, spec)  # An agent that cannot act in this env says so here, before Ray starts.

    if dist.address is None and dist.learner_device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("DistributedConfig.learner_device is 'cuda', but this machine has no CUDA device "
                          "(the local mode's Ray runs here); use auto or cpu")
    started_ray = init_ray(dist)
    reclaim_signals()  # ray.init replaced the SIGTERM handler of graceful_stop.
    handles: list = []
    try:
        # A cluster that cannot serve the learner device is a configuration error: before the run directory.
        device = resolve_learner_device(dist.learner_device, float(ray.cluster_resources().get("GPU", 0.0)))
        builder.with_num_actors(actor_count(dist, float(ray.cluster_resources().get("CPU", 1.0)))).check_budget(
            config.max_env_steps)
        recorder = RunRecorder(
            config.run_dir, config.env, config.agent, config.seed, dist.mode, config.max_env_steps,
            {**experiment_record(config, spec), "distributed": dataclasses.asdict(dist)},
            config.reward_threshold, config.progress, config.tensorboard, config.wandb_project,
            resume_dir=resume, resume_state=None if run_state is None else run_state["recorder"],
        )
        driver: RunLoop | None = None
        try:
            components = RunComponents.start(
                config, dist, spec, device, recorder.run_dir, handles, restore_from=folder,
                policy_states=None if run_state is None else run_state.get("policies"),
                env_steps_done=0 if run_state is None else int(run_state["env_steps"]),
            )
            driver = RunLoop(components, dist, spec, recorder, on_poll, run_state)
            return driver.run()
        except RunInterrupted:
            raise  # The driver wrote the checkpoint and the summary.
        except BaseException as error:
            env_steps = 0 if driver is None else driver.env_steps
            if driver is not None and isinstance(error, Exception):
                driver.checkpoint_after_failure()
            recorder.fail(env_steps, 0 if driver is None else driver.learner_steps, error)
            if driver is None or not isinstance(error, Exception):
                raise  # Ctrl-C, or a failure to start the components.
            raise TrainingError(
                f"training failed at env step {env_steps}: {type(error).__name__}: {error}",
                env_steps, recorder.run_dir,
            ) from error
    finally:
        for handle in handles:
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001 - best effort cleanup of an already dead actor.
                pass
        if started_ray:
            ray.shutdown()
