"""Starting a run's Ray actors: replay server, weight store, learner and env actors.

``RunComponents.start`` splits the cluster's CPUs (one for the learner when
there are two or more, the rest evenly over the env actors), sizes the builder for the number of actors
(``Builder.with_num_actors``) and creates, in this order, the replay server
(the builder's tables), the weight store, the learner (which publishes
version 0 before it answers) and the env actors, then starts the learner.
Every handle goes into the caller's ``handles`` list as soon as it exists,
so the caller can kill whatever was started when a later step fails.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from pathlib import Path
from typing import Any

import ray

from distrl.experiments.checkpoints import CHECKPOINTS_DIR
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.env_actor import EnvActorWorker
from distrl.experiments.distributed.learner import LearnerWorker, SamplingPlan
from distrl.replay.server import create_replay_server
from distrl.specs import EnvironmentSpec
from distrl.utils.seeding import derive_seed
from distrl.variables.weight_store import create_weight_store


def actor_count(dist: DistributedConfig, cluster_cpus: float) -> int:
    """``dist.num_actors``, or one env actor per CPU of the cluster beyond the learner's."""
    return dist.num_actors if dist.num_actors is not None else max(1, int(cluster_cpus) - 1)


def step_shares(remaining: int, num_actors: int) -> list[int]:
    """The env steps each of ``num_actors`` actors may take of the ``remaining`` budget: equal
    shares, the first ``remaining % num_actors`` actors one more, summing to ``remaining``.

    Each actor stops at its share, so the run's total never passes ``max_env_steps``; the
    driver's count of the actors' steps arrives one poll late, so a budget it enforced alone
    would be overshot by a poll's worth of steps of every actor."""
    base, extra = divmod(max(0, remaining), num_actors)
    return [base + (1 if index < extra else 0) for index in range(num_actors)]


@dataclasses.dataclass(frozen=True)
class RunComponents:
    """The Ray actors of one run and the facts they were started with."""

    config: ExperimentConfig
    """The experiment, its builder sized for ``num_actors`` (``Builder.with_num_actors``)."""
    device: str
    """The learner's device: ``cuda`` or ``cpu``."""
    num_actors: int
    server: Any
    """Handle of the ``ReplayServer``."""
    table: str
    """The table the learner samples (the builder's first)."""
    store: Any
    """Handle of the ``WeightStore``."""
    learner: Any
    """Handle of the ``LearnerWorker``."""
    actors: list
    """Handles of the ``EnvActorWorker``s, by index."""
    step_shares: list
    """Env steps each actor may take in this run (``step_shares``), by index."""

    @classmethod
    def start(
        cls, config: ExperimentConfig, dist: DistributedConfig, spec: EnvironmentSpec, device: str, run_dir: Path,
        handles: list, restore_from: Path | None = None, policy_states: list | None = None,
        env_steps_done: int = 0,
    ) -> "RunComponents":
        """Creates and starts every actor (see the module docstring), the learner on ``device``
        (``cuda`` or ``cpu``, from ``resolve_learner_device``). The learner and the replay server
        know the run's checkpoint store (``RUN_DIR/checkpoints``), which they restore from when
        Ray restarts them; ``restore_from`` (a resumed run) is the checkpoint folder both start
        from, and ``policy_states`` (one per actor, or None) the actors' exploration states then
        (e.g. where DQN's epsilon schedule was). The ``max_env_steps - env_steps_done`` steps
        left are shared among the actors (``step_shares``)."""
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        num_actors = actor_count(dist, cpus)
        config = dataclasses.replace(config, builder=config.builder.with_num_actors(num_actors))
        # The driver runs the evaluations (and on_evaluation); Ray actors get the config without it.
        remote_config = dataclasses.replace(config, on_evaluation=None)
        learner_cpus = 1.0 if cpus >= 2 else 0.0
        actor_cpus = round(max(0.01, min(1.0, (cpus - learner_cpus) / num_actors)), 4)

        make_tables = functools.partial(
            remote_config.builder.make_replay_tables, spec, derive_seed(config.seed, "replay")
        )
        run_id = uuid.uuid4().hex[:12]
        server_name, store_name = f"distrl-{run_id}-replay", f"distrl-{run_id}-weights"
        checkpoint_root = str((run_dir / CHECKPOINTS_DIR).resolve())
        restore = None if restore_from is None else str(restore_from.resolve())
        server = create_replay_server(
            make_tables,
            insert_concurrency=num_actors * dist.max_in_flight_inserts + 2,
            sample_concurrency=dist.prefetch + 2,
            name=server_name,
            max_restarts=dist.replay_max_restarts,
            checkpoint_root=checkpoint_root,
            restore_from=restore,
        )
        handles.append(server)
        store = create_weight_store(name=store_name)
        handles.append(store)
        table = ray.get(server.table_names.remote(), timeout=dist.wait_timeout_s)[0]

        learner_options: dict[str, Any] = {
            "num_cpus": learner_cpus, "max_concurrency": 4,
            "max_restarts": dist.learner_max_restarts, "max_task_retries": 0,
        }
        if device == "cuda":
            learner_options["num_gpus"] = 1
        is_queue = ray.get(server.is_queue.remote(table), timeout=dist.wait_timeout_s)
        sampling = SamplingPlan.of(config.builder, dist, is_queue)
        learner = ray.remote(LearnerWorker).options(**learner_options).remote(
            remote_config, spec, server_name, table, store_name, device, dist, sampling, checkpoint_root, restore,
        )
        handles.append(learner)
        actor_class = ray.remote(EnvActorWorker).options(
            num_cpus=actor_cpus, max_concurrency=4, max_restarts=dist.max_restarts, max_task_retries=0,
        )
        actors = []
        shares = step_shares(config.max_env_steps - env_steps_done, num_actors)
        for index in range(num_actors):
            policy_state = None
            if policy_states is not None and len(policy_states) == num_actors:
                policy_state = policy_states[index]
            handle = actor_class.remote(
                remote_config, spec, index, num_actors, server_name, table, store_name, dist, policy_state,
                shares[index],
            )
            actors.append(handle)
            handles.append(handle)
        ray.get(learner.start.remote(), timeout=dist.wait_timeout_s)
        return cls(config, device, num_actors, server, table, store, learner, actors, shares)
