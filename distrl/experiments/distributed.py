"""The Ray runtime: N environment actors, one learner, a replay server and a weight store.

``run_distributed(config, DistributedConfig(...))`` runs the same
``ExperimentConfig`` as ``run_local``. The pieces, each a Ray actor:

* ``ReplayServer`` hosts the builder's tables (``distrl.replay.server``);
* ``WeightStore`` holds the latest published weights
  (``distrl.variables.weight_store``);
* ``LearnerWorker`` runs ``builder.make_learner`` on a
  ``PrefetchingIterator`` over the replay server (``prefetch`` sample calls
  in flight, each fetching ``sample_batches_per_call`` batches) in a
  background thread, and publishes its weights every
  ``publish_period`` steps; it gets a GPU when ``learner_device`` resolves
  to CUDA;
* ``EnvActorWorker`` i builds its environment(s) with
  ``derive_seed(seed, "env", i)``, an actor from ``builder.make_actor`` with
  its own exploration level (DQN: Ape-X epsilons
  eps_i = 0.4 ** (1 + 7 i / (N - 1)), 0.4 for N = 1), writes through a
  ``RayReplayClient`` (at most ``max_in_flight_inserts`` inserts
  outstanding) and pulls weights through a ``RayVariableSource`` every
  ``update_period`` env steps. It is restartable (``max_restarts``): a
  restarted actor rebuilds its environment, pulls the latest weights and
  carries on, with nothing to restore.

The driver (this process) polls counters every ``poll_interval_s`` seconds,
runs greedy evaluations with the latest weights every ``eval_every`` env
steps, feeds the same ``RunRecorder`` as the single-process mode (progress
bar, ``metrics.csv``, ``summary.json``) plus throughput figures, and stops
everything once ``max_env_steps`` (or ``time_budget_s``) is reached, on an
error, or on Ctrl-C. The env-step count may overshoot the budget by what the
actors step during one poll interval.

Only this module and the modules it imports from ``distrl.replay.server``
and ``distrl.variables.weight_store`` import ray; ``run_local`` never does.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import threading
import time
import traceback
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import ray
import torch

from distrl.agents.builder import Builder
from distrl.core import Actor, BatchedActor, VariableSource
from distrl.environment_loop import VectorEnvironmentLoop
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.local import experiment_record
from distrl.experiments.prefetch import PrefetchingIterator, PrefetchStopped
from distrl.experiments.reporting import RunRecorder
from distrl.replay.server import CLIENT_TIMEOUT_MARGIN_S, RayReplayClient, create_replay_server
from distrl.specs import EnvironmentSpec, make_environment_spec
from distrl.types import Versioned
from distrl.utils.checkpointing import load_checkpoint, save_checkpoint
from distrl.utils.config import require
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.variables.weight_store import (
    RayVariableSource,
    WaitInterrupted,
    WeightPublisher,
    create_weight_store,
)

LEARNER_DEVICES = ("auto", "cuda", "cpu")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How a run is spread over Ray actors; every field is validated by name."""

    num_actors: int | None = None
    """Environment actors; None: the CPUs Ray has minus one (for the learner), at least 1."""
    envs_per_actor: int | None = None
    """Environments per actor stepped in lockstep; None: the builder's own (1 for DQN).
    Must equal the builder's, which builds the batched actor for it."""
    learner_device: str = "auto"
    """Where the learner runs: auto (CUDA when the cluster has a GPU), cuda or cpu."""
    max_restarts: int = -1
    """Ray restarts of a crashed environment actor; -1: unlimited, 0: none."""
    learner_max_restarts: int = 3
    """Ray restarts of a crashed learner process (it resumes from its last checkpoint); 0: none."""
    learner_checkpoint_period_s: float | None = 60.0
    """Seconds between the learner's own checkpoints (``checkpoint.pt`` in the run directory,
    written atomically by the learner thread) that a restarted learner resumes from;
    None: only the final one, and a restarted learner starts afresh."""
    publish_period: int | None = None
    """Learner steps between weight publishes (one ray.put each); None: 10, or 1 for a
    synchronous agent (A2C by default), whose actors wait for every version."""
    update_period: int = 100
    """Env steps of an actor between checks for newer weights (the check never blocks)."""
    max_in_flight_inserts: int = 4
    """Insert calls one actor may have outstanding before it waits (backpressure)."""
    prefetch: int = 2
    """Sample calls the learner keeps in flight."""
    sample_batches_per_call: int = 4
    """Learner batches fetched by one sample call (amortises the remote call over several steps);
    always 1 for a queue table (on-policy agents)."""
    time_budget_s: float | None = None
    """Stop after this many seconds of running even before max_env_steps; None: no limit."""
    address: str | None = None
    """None: start a private local Ray instance ("local" mode); "auto" or host:port: attach to that cluster."""
    num_cpus: int | None = None
    """CPUs of the private local Ray instance; None: all of this machine's."""
    poll_interval_s: float = 0.5
    """Seconds between the driver's polls of the actors' and learner's counters."""
    wait_timeout_s: float = 600.0
    """Longest any single wait may last (replay insert/sample, weight fetch, an unresponsive actor)."""

    def __post_init__(self) -> None:
        owner = "DistributedConfig"
        for name in ("num_actors", "envs_per_actor"):
            value = getattr(self, name)
            require(value is None or (isinstance(value, int) and value >= 1), owner, name, value,
                    "be a positive integer or None")
        require(self.learner_device in LEARNER_DEVICES, owner, "learner_device", self.learner_device,
                f"be one of {', '.join(LEARNER_DEVICES)}")
        require(isinstance(self.max_restarts, int) and self.max_restarts >= -1, owner, "max_restarts",
                self.max_restarts, "be an integer >= -1")
        require(isinstance(self.learner_max_restarts, int) and self.learner_max_restarts >= 0, owner,
                "learner_max_restarts", self.learner_max_restarts, "be an integer >= 0")
        require(self.learner_checkpoint_period_s is None or self.learner_checkpoint_period_s > 0, owner,
                "learner_checkpoint_period_s", self.learner_checkpoint_period_s, "be > 0 seconds or None")
        require(self.publish_period is None or (isinstance(self.publish_period, int) and self.publish_period >= 1),
                owner, "publish_period", self.publish_period, "be a positive integer or None")
        for name in ("update_period", "max_in_flight_inserts", "prefetch", "sample_batches_per_call"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, owner, name, value, "be a positive integer")
        require(self.time_budget_s is None or self.time_budget_s > 0, owner, "time_budget_s", self.time_budget_s,
                "be > 0 seconds or None")
        require(self.address is None or (isinstance(self.address, str) and self.address.strip() != ""), owner,
                "address", self.address, 'be None, "auto" or host:port')
        require(self.num_cpus is None or (isinstance(self.num_cpus, int) and self.num_cpus >= 1), owner,
                "num_cpus", self.num_cpus, "be a positive integer or None")
        require(self.address is None or self.num_cpus is None, owner, "num_cpus", self.num_cpus,
                "be None when attaching to a cluster (address is set); the cluster has its own CPUs")
        for name in ("poll_interval_s", "wait_timeout_s"):
            value = getattr(self, name)
            require(value > 0, owner, name, value, "be > 0 seconds")

    @property
    def mode(self) -> str:
        """``local`` (a private Ray instance) or ``cluster`` (attached to one)."""
        return "local" if self.address is None else "cluster"


def apex_epsilon(index: int, num_actors: int) -> float:
    """Ape-X's per-actor epsilon: 0.4 ** (1 + 7 * i / (N - 1)), 0.4 for N = 1.

    Actor 0 explores most (0.4); the last nearly never (0.4 ** 8 ~ 6.6e-4),
    so the replay mixes broad exploration with near-greedy play.
    """
    if num_actors == 1:
        return 0.4
    return 0.4 ** (1 + 7 * index / (num_actors - 1))


def actor_exploration(agent: str, index: int, num_actors: int) -> float | None:
    """Exploration level of actor ``index``: Ape-X epsilons for DQN; None (the
    builder's default) for other agents."""
    if agent == "dqn":
        return apex_epsilon(index, num_actors)
    return None


class _BufferLogger(Logger):
    """Keeps rows in memory until the driver collects them (workers cannot
    write the driver's files)."""

    def __init__(self, max_rows: int = 10_000) -> None:
        self._rows: collections.deque = collections.deque(maxlen=max_rows)

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        self._rows.append(({k: float(v) for k, v in metrics.items()}, int(env_steps)))

    def drain(self) -> list[tuple[dict[str, float], int]]:
        rows = []
        while self._rows:
            rows.append(self._rows.popleft())
        return rows


class _NamesProbe(VariableSource):
    """Records the variable names an actor asks for, then stops it with ``_Probed``."""

    class Probed(Exception):
        pass

    def __init__(self) -> None:
        self.names: list[str] = []

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        self.names = list(names)
        raise self.Probed()


def variable_names(config: ExperimentConfig, spec: EnvironmentSpec) -> list[str]:
    """The variable names the builder's actors ask their variable source for.

    Builders do not declare them; an actor built against a probe source asks
    for them on its first ``update(wait=True)``, which the probe records.
    """
    builder = config.builder
    networks = config.network_factory(spec)
    probe = _NamesProbe()
    policy = builder.make_policy(networks, evaluation=True, seed=0)
    actor = builder.make_actor(policy, networks, probe, None)
    try:
        actor.update(wait=True)
    except _NamesProbe.Probed:
        pass
    if not probe.names:
        raise RuntimeError(f"{type(builder).__name__}'s actor asked for no variables; nothing to publish")
    return probe.names


def _to_cpu(value: Any) -> Any:
    """A copy of a nest of tensors with every tensor on the CPU (for checkpoints)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((k, _to_cpu(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _restarted() -> bool:
    """True in an actor process that Ray restarted (False outside an actor)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # The property is deprecated but has no replacement yet.
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except AssertionError:  # Not an actor process (e.g. a driver running a worker in-process).
        return False


class EnvActorWorker:
    """One environment actor process: acting in a background thread.

    The replay server and weight store are found by their (per-run unique)
    actor names rather than passed as handles, so the constructor's arguments
    are plain values that Ray can always replay on a restart.

    The constructor returns at once; the thread pulls the latest weights
    (waiting for the first version) and then steps until ``stop()``. So a
    restart by Ray (which reruns the constructor) resumes acting without the
    driver doing anything. A failure in the thread is kept and reported by
    ``stats()`` rather than crashing the process, so the driver can report it.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        spec: EnvironmentSpec,
        index: int,
        num_actors: int,
        num_envs: int,
        server_name: str,
        table: str,
        store_name: str,
        dist: DistributedConfig,
    ) -> None:
        self.index = index
        self.incarnation = uuid.uuid4().hex
        restarted = _restarted()
        seed = config.seed if not restarted else derive_seed(config.seed, "restart", self.incarnation)
        seed_everything(derive_seed(seed, "actor", index))
        torch.set_num_threads(config.torch_threads)
        builder = config.builder
        if num_envs == 1:
            env_seeds = [derive_seed(seed, "env", index)]
        else:
            env_seeds = [derive_seed(seed, "env", index, j) for j in range(num_envs)]
        self._environments = [config.environment_factory(s) for s in env_seeds]
        networks = config.network_factory(spec)
        server, store = ray.get_actor(server_name), ray.get_actor(store_name)
        self._client = RayReplayClient(server, table, dist.max_in_flight_inserts, timeout=dist.wait_timeout_s)
        self._source = RayVariableSource(store, update_period=dist.update_period, timeout=dist.wait_timeout_s)
        self.exploration = actor_exploration(config.agent, index, num_actors)
        policy = builder.make_policy(
            networks, evaluation=False, seed=derive_seed(seed, "policy", index), exploration=self.exploration
        )
        if num_envs == 1:
            self._actor: Actor | BatchedActor = builder.make_actor(
                policy, networks, self._source, builder.make_adder(self._client)
            )
        else:
            adders = builder.make_adders(self._client, num_envs)
            self._actor = builder.make_batched_actor(policy, networks, self._source, adders)
        self._stop = threading.Event()
        self._episodes: collections.deque = collections.deque(maxlen=10_000)
        self._env_steps = 0
        self._policy_version = -1
        self._version_regressions = 0
        self._error: str | None = None
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"distrl-env-actor-{index}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._actor.update(wait=True)
            self._track_version()
            if len(self._environments) == 1:
                self._run_single()
            else:
                self._run_vector()
        except WaitInterrupted:  # stop() ended a synchronous actor's wait for the next version.
            pass
        except Exception:  # noqa: BLE001 - reported to the driver by stats().
            self._error = traceback.format_exc()

    def _track_version(self) -> None:
        version = getattr(self._actor, "policy_version", -1)
        if version < self._policy_version:
            self._version_regressions += 1
        self._policy_version = version

    def _run_single(self) -> None:
        """Episodes back to back; the stop flag is checked every step."""
        environment, actor, stop = self._environments[0], self._actor, self._stop
        while not stop.is_set():
            timestep = environment.reset()
            actor.observe_first(timestep)
            episode_return, length = 0.0, 0
            while not timestep.last():
                if stop.is_set():
                    return
                action = actor.select_action(timestep.observation)
                timestep = environment.step(action)
                actor.observe(action, timestep)
                actor.update()
                self._track_version()
                episode_return += float(timestep.reward)
                length += 1
                self._env_steps += 1
            self._episodes.append((episode_return, length))

    def _run_vector(self) -> None:
        """Lockstep vector steps in chunks of 8, checking the stop flag (and
        publishing the step count) between chunks."""
        counter = Counter()

        def on_episode_end(result: dict[str, float]) -> None:
            self._episodes.append((result["episode_return"], int(result["episode_length"])))

        loop = VectorEnvironmentLoop(self._environments, self._actor, counter, on_episode_end=on_episode_end)
        chunk = 8 * len(self._environments)
        while not self._stop.is_set():
            try:
                loop.run(num_steps=chunk)
            finally:
                # Also when stop() interrupts the wait for the next version
                # mid-chunk: the round just inserted and the version held count.
                self._env_steps = int(counter.get("env_steps"))
                self._track_version()

    def stats(self) -> dict[str, Any]:
        """Counters since this incarnation started; ``episodes`` are drained
        (each (return, length) pair is reported once)."""
        episodes = []
        while self._episodes:
            episodes.append(self._episodes.popleft())
        client = self._client.stats()
        return {
            "index": self.index,
            "incarnation": self.incarnation,
            "pid": os.getpid(),
            "env_steps": self._env_steps,
            "episodes": episodes,
            "policy_version": self._policy_version,
            "version_regressions": self._version_regressions,
            "versions_loaded": self._source.versions_loaded,
            "weight_fetch_errors": self._source.fetch_errors,
            "insert_wait_s": client["insert_wait_s"],
            "max_in_flight_inserts_seen": client["max_in_flight_seen"],
            "elapsed_s": time.perf_counter() - self._start,
            "exploration": self.exploration,
            "running": self._thread.is_alive(),
            "error": self._error,
        }

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stops stepping, waits (``timeout`` seconds at most) for the thread and
        its outstanding inserts, and returns the final ``stats()``."""
        self._stop.set()
        self._source.interrupt()
        self._thread.join(timeout)
        try:
            self._client.flush()
        except Exception:  # noqa: BLE001 - data of a stopping run; the stats still matter.
            pass
        return self.stats()


class LearnerWorker:
    """The learner process: learner steps in a background thread, weights published.

    The constructor builds the learner and publishes version 0 (so actors
    can start acting at once); ``start()`` starts stepping; ``stop()`` ends
    the thread (a wait for data is interrupted), publishes the final version
    and returns the final stats. Every ``learner_checkpoint_period_s`` the
    thread writes the learner's state to ``checkpoint_path``.

    When Ray restarts the process after a crash, the constructor restores
    that checkpoint and starts stepping by itself. Its step count (the
    weight version) becomes one more than the newest version in the weight
    store, so versions still only increase and the actors load the restored
    weights at once; the updates made after the checkpoint are lost.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        spec: EnvironmentSpec,
        server_name: str,
        table: str,
        store_name: str,
        names: Sequence[str],
        device: str,
        dist: DistributedConfig,
        sampling: "_Sampling",
        checkpoint_path: str,
    ) -> None:
        # Plain values only (the server and store are looked up by name), so that
        # Ray can rerun this constructor on a restart: it cannot be relied on to keep
        # constructor arguments that live in the object store (ray-project/ray#53727).
        server, store = ray.get_actor(server_name), ray.get_actor(store_name)
        restarted = _restarted()
        self.incarnation = uuid.uuid4().hex[:8]
        # A restarted learner must not replay its first incarnation's random stream.
        seed_everything(derive_seed(config.seed, "learner", *((self.incarnation,) if restarted else ())))
        torch.set_num_threads(config.torch_threads)
        builder = config.builder
        self._device = torch.device(device)
        newest_version = ray.get(store.claim.remote(self.incarnation), timeout=dist.wait_timeout_s)
        if restarted:
            # Sample calls the dead learner left waiting would take data meant for this one.
            ray.get(server.cancel_sample_waits.remote(table), timeout=dist.wait_timeout_s)
        self._client = RayReplayClient(server, table, dist.max_in_flight_inserts, timeout=dist.wait_timeout_s)
        self._stop = threading.Event()
        self._iterator = PrefetchingIterator(
            self._client, sampling.sample_size, dist.prefetch, self._device,
            timeout=dist.wait_timeout_s + CLIENT_TIMEOUT_MARGIN_S, stop_event=self._stop,
            batches_per_call=sampling.batches_per_call,
        )
        self._counter = Counter()
        self._logger = _BufferLogger()
        networks = config.network_factory(spec)
        self._learner = builder.make_learner(
            networks, self._iterator, self._client, self._counter, self._logger, self._device
        )
        self._checkpoint_path = Path(checkpoint_path)
        self._checkpoint_period_s = dist.learner_checkpoint_period_s
        self._next_checkpoint = time.monotonic() + (self._checkpoint_period_s or 0.0)
        self.checkpoints = 0
        self.checkpoint_s = 0.0
        self.restored_from_steps: int | None = None
        if restarted:
            self._restore(newest_version)
        self._publisher = WeightPublisher(
            self._learner, store, sampling.publish_period, names, timeout=dist.wait_timeout_s,
            publisher=self.incarnation,
        )
        self._publisher.publish()
        self._publisher.flush()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._steady_start: tuple[float, float] | None = None  # (time, wait_s) after the first batch.
        if restarted:
            self.start()

    def _restore(self, newest_version: int) -> None:
        """Loads the last checkpoint (when there is one) and moves the step
        count past the newest published version."""
        if self._checkpoint_path.exists():
            state = dict(load_checkpoint(self._checkpoint_path)["learner"])
            self.restored_from_steps = int(state["steps"])
        else:
            state = dict(self._learner.save())
        state["steps"] = max(int(state["steps"]), int(newest_version) + 1)
        self._learner.restore(state)

    def _write_checkpoint(self) -> None:
        start = time.perf_counter()
        save_checkpoint(self._checkpoint_path, {"learner": _to_cpu(self._learner.save())})
        self.checkpoints += 1
        self.checkpoint_s += time.perf_counter() - start

    def start(self) -> None:
        """Starts the learner thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="distrl-learner", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        learner, publisher, stop = self._learner, self._publisher, self._stop
        try:
            while not stop.is_set():
                learner.step()
                if self._steady_start is None:
                    self._steady_start = (time.perf_counter(), self._iterator.wait_s)
                publisher.after_step()
                if self._checkpoint_period_s is not None and time.monotonic() >= self._next_checkpoint:
                    self._write_checkpoint()
                    self._next_checkpoint = time.monotonic() + self._checkpoint_period_s
        except PrefetchStopped:
            pass
        except Exception:  # noqa: BLE001 - reported to the driver by stats().
            self._error = traceback.format_exc()

    def stats(self, env_steps: int | None = None) -> dict[str, Any]:
        """Counters and drained log rows; ``env_steps`` (the run's total) keys the learner's own logs.

        ``wait_fraction`` is the share of time since the first batch arrived
        that the learner waited for data (the warm-up fill of the replay is
        left out).
        """
        if env_steps is not None:
            delta = env_steps - self._counter.get("env_steps")
            if delta > 0:
                self._counter.increment(env_steps=delta)
        prefetch = self._iterator.stats()
        wait_fraction = 0.0
        if self._steady_start is not None:
            start, wait0 = self._steady_start
            elapsed = time.perf_counter() - start
            if elapsed > 0:
                wait_fraction = (self._iterator.wait_s - wait0) / elapsed
        return {
            "steps": self._learner.steps,
            "incarnation": self.incarnation,
            "restored_from_steps": self.restored_from_steps,
            "checkpoints": self.checkpoints,
            "checkpoint_s": self.checkpoint_s,
            "published_version": self._publisher.version,
            "publishes": self._publisher.publishes,
            "publish_s": self._publisher.publish_s,
            "wait_s": prefetch["wait_s"],
            "wait_fraction": min(max(wait_fraction, 0.0), 1.0),
            "rows": self._logger.drain(),
            "running": self._thread is not None and self._thread.is_alive(),
            "error": self._error,
        }

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stops the thread (``timeout`` seconds at most), publishes the final
        weights and returns the final ``stats()``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._iterator.close()
        self._publisher.publish()
        self._publisher.flush()
        return self.stats()

    def save(self) -> Mapping[str, Any]:
        """The learner's state with every tensor on the CPU (call after ``stop``)."""
        return _to_cpu(self._learner.save())


@dataclasses.dataclass(frozen=True)
class _Sampling:
    """How the learner reads the replay server and publishes weights."""

    sample_size: int
    """Items per sample call."""
    batches_per_call: int
    """Learner batches per sample call."""
    publish_period: int
    """Learner steps between weight publishes."""

    @classmethod
    def of(cls, builder: Builder, dist: DistributedConfig, is_queue: bool) -> "_Sampling":
        """Replay tables: ``sample_batches_per_call`` batches per call (amortises
        the round trip). A queue (on-policy segments, each handed out once) is
        read one actor round (``envs_per_actor`` items) per call: rounds arrive
        whole (``Builder.make_adders``), so a call never waits on part of a round
        that only the next weight version will complete, and the learner
        assembles its batch from rounds. A synchronous builder's actors wait
        for every new version, so it is published after every step."""
        publish_period = dist.publish_period if dist.publish_period is not None else (1 if builder.synchronous else 10)
        require(publish_period == 1 or not builder.synchronous, "DistributedConfig", "publish_period",
                dist.publish_period, f"be 1 or None for a synchronous agent ({type(builder).__name__}: its actors "
                f"wait for every new version)")
        if is_queue:
            return cls(builder.envs_per_actor, 1, publish_period)
        return cls(builder.batch_size, dist.sample_batches_per_call, publish_period)


@dataclasses.dataclass
class PollState:
    """What the driver knows after a poll; handed to ``run_distributed``'s ``on_poll``."""

    env_steps: int
    learner_steps: int
    elapsed_s: float
    actors: list
    """Handles of the environment actors, by index."""
    actor_stats: list
    """Latest ``EnvActorWorker.stats()`` per actor (None until the first reply)."""
    restarts: list
    """Restarts seen per actor (a new incarnation answered)."""
    steps_by_incarnation: list
    """Per actor, {incarnation: env steps} of every incarnation seen."""
    learner: Any
    """Handle of the learner actor."""
    learner_stats: dict
    """Latest ``LearnerWorker.stats()`` (empty until the first reply)."""


class _ActorTracker:
    """The driver's view of one environment actor across restarts."""

    def __init__(self, handle: "ray.actor.ActorHandle") -> None:
        self.handle = handle
        self.pending: "ray.ObjectRef | None" = None
        self.last: dict[str, Any] | None = None
        self.steps_by_incarnation: dict[str, int] = {}
        self.insert_wait_by_incarnation: dict[str, float] = {}
        self.elapsed_by_incarnation: dict[str, float] = {}
        self.restarts = 0
        self.unreachable_since: float | None = None

    @property
    def env_steps(self) -> int:
        return sum(self.steps_by_incarnation.values())

    def update(self, stats: dict[str, Any]) -> None:
        incarnation = stats["incarnation"]
        if self.steps_by_incarnation and incarnation not in self.steps_by_incarnation:
            self.restarts += 1
        self.steps_by_incarnation[incarnation] = int(stats["env_steps"])
        self.insert_wait_by_incarnation[incarnation] = float(stats["insert_wait_s"])
        self.elapsed_by_incarnation[incarnation] = float(stats["elapsed_s"])
        self.last = stats
        self.unreachable_since = None


def _unreachable_since(
    what: str, option: str, max_restarts: int, since: float | None, now: float, timeout_s: float,
    error: Exception,
) -> float:
    """The driver's answer to a stats call that failed because ``what``'s
    process died: Ray restarts it (up to ``max_restarts``, the option named
    ``option``) and it resumes by itself. Raises when it will not be
    restarted or has been unreachable for more than ``timeout_s`` seconds;
    otherwise returns since when (``time.perf_counter()``) it has been."""
    if max_restarts == 0:
        raise RuntimeError(f"{what} died ({option}=0): {error}") from error
    if since is None:
        return now
    if now - since > timeout_s:
        raise RuntimeError(
            f"{what} has been unreachable for {timeout_s:g} s ({option}={max_restarts}): {error}"
        ) from error
    return since


def init_ray(dist: DistributedConfig) -> bool:
    """Starts or attaches to Ray as ``dist`` says; returns True when this call started it.

    A Ray already initialised in this process is reused as it is. "local"
    mode always starts a private instance (``address="local"``), never
    attaching to a cluster that happens to run on the machine. Workers must
    import distrl: the directory holding the package is put on their
    PYTHONPATH (a checkout that is not installed works too).
    """
    if ray.is_initialized():
        return False
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.environ.get("PYTHONPATH", "")
    if package_root not in python_path.split(os.pathsep):
        os.environ["PYTHONPATH"] = package_root + (os.pathsep + python_path if python_path else "")
    if dist.address is None:
        ray.init(address="local", num_cpus=dist.num_cpus or os.cpu_count() or 1, include_dashboard=False)
    else:
        ray.init(address=dist.address)
    return True


def _resolve_device(requested: str, cluster_gpus: float) -> str:
    if requested == "auto":
        return "cuda" if cluster_gpus >= 1 else "cpu"
    if requested == "cuda" and cluster_gpus < 1:
        raise ValueError(
            "DistributedConfig.learner_device must be auto or cpu on a Ray cluster without GPUs, got 'cuda'"
        )
    return requested


def run_distributed(
    config: ExperimentConfig,
    dist: DistributedConfig | None = None,
    on_poll: Callable[[PollState], bool | None] | None = None,
) -> dict[str, Any]:
    """Runs ``config`` on Ray until its env-step budget (or ``dist.time_budget_s``) and returns the summary.

    ``on_poll`` (for tests and tools) is called after every poll with a
    ``PollState``; when it returns True the run ends there, as when the
    budget is reached. The summary has the keys of ``run_local``'s plus
    ``distributed`` (throughput, lags, waits, restarts, the bottleneck) and
    ``replay`` (the table's counters).
    """
    dist = dist if dist is not None else DistributedConfig()
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    builder = config.builder
    num_envs = dist.envs_per_actor if dist.envs_per_actor is not None else builder.envs_per_actor
    require(num_envs == builder.envs_per_actor, "DistributedConfig", "envs_per_actor", dist.envs_per_actor,
            f"equal the agent's envs_per_actor ({builder.envs_per_actor}); set it in the agent config instead")
    probe = config.environment_factory(derive_seed(config.seed, "eval"))
    spec = make_environment_spec(probe)
    probe.close()
    names = variable_names(config, spec)

    started_ray = init_ray(dist)
    handles: list = []
    try:
        return _Driver(config, dist, spec, names, num_envs, handles, on_poll).run()
    finally:
        for handle in handles:
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001 - best effort cleanup of an already dead actor.
                pass
        if started_ray:
            ray.shutdown()


class _Driver:
    """The driver loop of ``run_distributed`` (one instance per run)."""

    def __init__(
        self,
        config: ExperimentConfig,
        dist: DistributedConfig,
        spec: EnvironmentSpec,
        names: list[str],
        num_envs: int,
        handles: list,
        on_poll: Callable[[PollState], bool | None] | None,
    ) -> None:
        self.config, self.dist, self.spec, self.names = config, dist, spec, names
        self.num_envs = num_envs
        self.handles = handles
        self.on_poll = on_poll

    def _start_components(self) -> None:
        config, dist, spec = self.config, self.dist, self.spec
        resources = ray.cluster_resources()
        cpus = float(resources.get("CPU", 1.0))
        gpus = float(resources.get("GPU", 0.0))
        self.device = _resolve_device(dist.learner_device, gpus)
        self.num_actors = dist.num_actors if dist.num_actors is not None else max(1, int(cpus) - 1)
        self.config = config = dataclasses.replace(config, builder=config.builder.with_num_actors(self.num_actors))
        learner_cpus = 1.0 if cpus >= 2 else 0.0
        actor_cpus = round(max(0.01, min(1.0, (cpus - learner_cpus) / self.num_actors)), 4)

        make_tables = functools.partial(config.builder.make_replay_tables, spec, derive_seed(config.seed, "replay"))
        run_id = uuid.uuid4().hex[:12]
        self.server_name, self.store_name = f"distrl-{run_id}-replay", f"distrl-{run_id}-weights"
        self.server = create_replay_server(
            make_tables,
            insert_concurrency=self.num_actors * dist.max_in_flight_inserts + 2,
            sample_concurrency=dist.prefetch + 2,
            name=self.server_name,
        )
        self.handles.append(self.server)
        self.store = create_weight_store(name=self.store_name)
        self.handles.append(self.store)
        self.table = ray.get(self.server.table_names.remote(), timeout=dist.wait_timeout_s)[0]

        learner_options: dict[str, Any] = {
            "num_cpus": learner_cpus, "max_concurrency": 4,
            "max_restarts": dist.learner_max_restarts, "max_task_retries": 0,
        }
        if self.device == "cuda":
            learner_options["num_gpus"] = 1
        is_queue = ray.get(self.server.is_queue.remote(self.table), timeout=dist.wait_timeout_s)
        self.sampling = _Sampling.of(config.builder, dist, is_queue)
        self.learner = ray.remote(LearnerWorker).options(**learner_options).remote(
            config, spec, self.server_name, self.table, self.store_name, self.names, self.device, dist,
            self.sampling, str((self.recorder.run_dir / "checkpoint.pt").resolve()),
        )
        self.learner_incarnations: list[str] = []
        self.learner_unreachable_since: float | None = None
        self.handles.append(self.learner)
        actor_class = ray.remote(EnvActorWorker).options(
            num_cpus=actor_cpus, max_concurrency=4, max_restarts=dist.max_restarts,
            max_task_retries=0,
        )
        self.actors = []
        for index in range(self.num_actors):
            handle = actor_class.remote(
                config, spec, index, self.num_actors, self.num_envs, self.server_name, self.table,
                self.store_name, dist,
            )
            self.actors.append(handle)
            self.handles.append(handle)
        self.trackers = [_ActorTracker(handle) for handle in self.actors]
        ray.get(self.learner.start.remote(), timeout=dist.wait_timeout_s)

    def _evaluation_actor(self) -> tuple[Actor, RecordingVariableSource]:
        builder = self.config.builder
        networks = self.config.network_factory(self.spec)
        policy = builder.make_policy(networks, evaluation=True, seed=derive_seed(self.config.seed, "eval_policy"))
        source = RecordingVariableSource(RayVariableSource(self.store, blocking=True, timeout=self.dist.wait_timeout_s))
        return builder.make_actor(policy, networks, source, None), source

    def run(self) -> dict[str, Any]:
        config, dist = self.config, self.dist
        self.recorder = recorder = RunRecorder(
            config.run_dir, config.env, config.agent, config.seed, dist.mode, config.max_env_steps,
            {**experiment_record(config), "distributed": dataclasses.asdict(dist)},
            config.reward_threshold, config.progress, config.tensorboard,
        )
        try:
            return self._run(recorder)
        except BaseException:
            recorder.logger.close()
            raise

    def _run(self, recorder: RunRecorder) -> dict[str, Any]:
        self._start_components()
        config, dist = self.config, self.dist
        eval_actor, eval_source = self._evaluation_actor()
        start = time.perf_counter()
        self.learner_stats: dict[str, Any] = {}
        self.learner_pending: "ray.ObjectRef | None" = None
        self.replay_info: dict[str, Any] = {}
        self.env_steps = 0
        last_metrics_time = start
        last_metrics = (0, 0, start)
        next_eval = config.eval_every

        def run_evaluation(env_steps: int) -> None:
            evaluate_and_keep_best(
                config, eval_actor, eval_source,
                lambda result: recorder.record_evaluation(result, env_steps, int(self.learner_stats.get("steps", 0))),
                recorder.run_dir, env_steps,
            )

        while True:
            time.sleep(self._sleep_s(start))
            self._poll()
            now = time.perf_counter()
            learner_steps = int(self.learner_stats.get("steps", 0))
            if now - last_metrics_time >= max(2.0, dist.poll_interval_s):
                steps0, updates0, t0 = last_metrics
                figures = self._figures(self.env_steps - steps0, learner_steps - updates0, now - t0)
                recorder.logger.write({f"distributed/{k}": v for k, v in figures.items()}, self.env_steps)
                last_metrics, last_metrics_time = (self.env_steps, learner_steps, now), now
            recorder.progress(self.env_steps, learner_steps, extra=self._progress_extra())
            stop_requested = False
            if self.on_poll is not None:
                stop_requested = bool(self.on_poll(PollState(
                    self.env_steps, learner_steps, now - start, list(self.actors),
                    [t.last for t in self.trackers], [t.restarts for t in self.trackers],
                    [dict(t.steps_by_incarnation) for t in self.trackers],
                    self.learner, dict(self.learner_stats),
                )))
            if stop_requested or self.env_steps >= config.max_env_steps:
                break
            if dist.time_budget_s is not None and now - start >= dist.time_budget_s:
                break
            if self.env_steps >= next_eval:
                run_evaluation(self.env_steps)
                next_eval = (self.env_steps // config.eval_every + 1) * config.eval_every
        running_s = time.perf_counter() - start
        self._stop_all()
        learner_steps = int(self.learner_stats.get("steps", 0))
        run_evaluation(self.env_steps)
        state = ray.get(self.learner.save.remote(), timeout=dist.wait_timeout_s)
        save_checkpoint(recorder.run_dir / "checkpoint.pt", {"learner": state})
        extra = {"distributed": self._summary(running_s), "replay": self.replay_info}
        return recorder.finish(self.env_steps, learner_steps, extra=extra)

    def _sleep_s(self, start: float) -> float:
        """Seconds until the next poll: ``poll_interval_s``, or less when the
        budget would run out sooner at the throughput so far (keeps the
        overshoot past ``max_env_steps`` small); never under 50 ms."""
        elapsed = time.perf_counter() - start
        remaining = self.config.max_env_steps - self.env_steps
        if self.env_steps <= 0 or elapsed <= 0:
            return self.dist.poll_interval_s
        rate = self.env_steps / elapsed
        return min(self.dist.poll_interval_s, max(0.05, remaining / rate))

    def _poll(self) -> None:
        """Collects every reply that is ready; never blocks on a busy or restarting actor."""
        dist = self.dist
        now = time.perf_counter()
        for index, tracker in enumerate(self.trackers):
            if tracker.pending is None:
                tracker.pending = tracker.handle.stats.remote()
                continue
            ready, _ = ray.wait([tracker.pending], timeout=0)
            if not ready:
                continue
            ref, tracker.pending = tracker.pending, tracker.handle.stats.remote()
            try:
                stats = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                tracker.unreachable_since = _unreachable_since(
                    f"env actor {index}", "max_restarts", dist.max_restarts, tracker.unreachable_since, now,
                    dist.wait_timeout_s, error,
                )
                continue
            if stats["error"]:
                raise RuntimeError(f"env actor {index} failed:\n{stats['error']}")
            tracker.update(stats)
            self._record_episodes(stats["episodes"])
        self.env_steps = sum(t.env_steps for t in self.trackers)
        if self.learner_pending is not None:
            ready, _ = ray.wait([self.learner_pending], timeout=0)
            if ready:
                ref, self.learner_pending = self.learner_pending, None
                try:
                    stats = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    self.learner_unreachable_since = _unreachable_since(
                        "the learner", "learner_max_restarts", dist.learner_max_restarts,
                        self.learner_unreachable_since, now, dist.wait_timeout_s, error,
                    )
                else:
                    self.learner_unreachable_since = None
                    self._take_learner_stats(stats)
        if self.learner_pending is None:
            self.learner_pending = self.learner.stats.remote(self.env_steps)
        self.replay_info = ray.get(self.server.info.remote(self.table), timeout=dist.wait_timeout_s)

    def _take_learner_stats(self, stats: dict[str, Any]) -> None:
        if stats["error"]:
            raise RuntimeError(f"learner failed:\n{stats['error']}")
        if stats["incarnation"] not in self.learner_incarnations:
            self.learner_incarnations.append(stats["incarnation"])
        for metrics, env_steps in stats.pop("rows"):
            self.recorder.logger.write(metrics, env_steps)
        self.learner_stats = stats

    def _record_episodes(self, episodes: list) -> None:
        for episode_return, length in episodes:
            self.recorder.episode_done(episode_return)
            self.recorder.logger.write(
                {"charts/episodic_return": episode_return, "charts/episodic_length": length}, self.env_steps
            )

    def _weight_lag(self) -> float:
        """Mean over actors of (latest published version - actor's version), in learner steps."""
        published = self.learner_stats.get("published_version", 0)
        lags = [published - t.last["policy_version"] for t in self.trackers if t.last is not None]
        return float(np.mean(lags)) if lags else 0.0

    def _backpressure_fraction(self) -> float:
        """Share of the actors' time spent waiting on backpressure (outstanding inserts)."""
        wait = sum(sum(t.insert_wait_by_incarnation.values()) for t in self.trackers)
        elapsed = sum(sum(t.elapsed_by_incarnation.values()) for t in self.trackers)
        return wait / elapsed if elapsed > 0 else 0.0

    def _figures(self, env_steps: int, updates: int, seconds: float) -> dict[str, float]:
        info = self.replay_info
        return {
            "env_steps_per_s": env_steps / max(seconds, 1e-9),
            "learner_updates_per_s": updates / max(seconds, 1e-9),
            "replay_size": float(info.get("size", 0)),
            "samples_per_insert": float(info.get("samples_per_insert", 0.0)),
            "weight_lag": self._weight_lag(),
            "learner_wait_fraction": float(self.learner_stats.get("wait_fraction", 0.0)),
            "actor_backpressure_wait_fraction": self._backpressure_fraction(),
        }

    def _progress_extra(self) -> dict[str, float]:
        return {
            "spi": float(self.replay_info.get("samples_per_insert", 0.0)),
            "lag": self._weight_lag(),
            "l_wait": float(self.learner_stats.get("wait_fraction", 0.0)),
        }

    def _stop_all(self) -> None:
        """Stops the actors first (the learner still samples, so their last
        inserts are admitted), then the learner, collecting final counters."""
        timeout = self.dist.wait_timeout_s
        refs = [t.handle.stop.remote() for t in self.trackers]
        for index, (tracker, ref) in enumerate(zip(self.trackers, refs)):
            try:
                stats = ray.get(ref, timeout=timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue
            tracker.update(stats)
            self._record_episodes(stats["episodes"])
        self.env_steps = sum(t.env_steps for t in self.trackers)
        self._take_learner_stats(ray.get(self.learner.stop.remote(), timeout=timeout))
        self.replay_info = ray.get(self.server.info.remote(self.table), timeout=timeout)

    def _summary(self, running_s: float) -> dict[str, Any]:
        learner = self.learner_stats
        per_actor = [
            t.env_steps / running_s if running_s > 0 else 0.0 for t in self.trackers
        ]
        wait_fraction = float(learner.get("wait_fraction", 0.0))
        backpressure = self._backpressure_fraction()
        server_insert_wait = float(self.replay_info.get("insert_wait_s", 0.0))
        if self.config.builder.synchronous:
            bottleneck = (
                f"lockstep: synchronous on-policy learning, each update waits for a round from every actor and "
                f"each actor for the update (the learner waited {wait_fraction:.0%} of the time); the round trip "
                f"bounds throughput, and max_policy_lag > 0 runs asynchronously"
            )
        elif wait_fraction > 0.1:
            bottleneck = (
                f"actors/replay: the learner waited for data {wait_fraction:.0%} of the time; "
                f"more env actors (or envs per actor) or a higher replay ratio would keep it busy"
            )
        else:
            bottleneck = (
                f"learner: it waited for data only {wait_fraction:.0%} of the time while actors spent "
                f"{backpressure:.0%} of theirs on backpressure and inserts waited {server_insert_wait:.1f} s "
                f"on the rate limiter; a faster learner (GPU, larger batch) would raise throughput"
            )
        return {
            "mode": self.dist.mode,
            "num_actors": self.num_actors,
            "envs_per_actor": self.num_envs,
            "learner_device": self.device,
            "running_s": round(running_s, 3),
            "env_steps_per_s": self.env_steps / running_s if running_s > 0 else 0.0,
            "env_steps_per_s_per_actor": per_actor,
            "learner_updates_per_s": learner.get("steps", 0) / running_s if running_s > 0 else 0.0,
            "replay_size": self.replay_info.get("size", 0),
            "samples_per_insert": self.replay_info.get("samples_per_insert", 0.0),
            "weight_lag_mean": self._weight_lag(),
            "published_version": learner.get("published_version", -1),
            "actor_policy_versions": [None if t.last is None else t.last["policy_version"] for t in self.trackers],
            "actor_version_regressions": sum(
                0 if t.last is None else t.last["version_regressions"] for t in self.trackers
            ),
            "actor_exploration": [None if t.last is None else t.last["exploration"] for t in self.trackers],
            "actor_restarts": [t.restarts for t in self.trackers],
            "learner_restarts": max(0, len(self.learner_incarnations) - 1),
            "learner_restored_from_steps": learner.get("restored_from_steps"),
            "learner_checkpoints": learner.get("checkpoints", 0),
            "learner_checkpoint_s": float(learner.get("checkpoint_s", 0.0)),
            "learner_wait_fraction": wait_fraction,
            "actor_backpressure_wait_fraction": backpressure,
            "replay_insert_wait_s": server_insert_wait,
            "replay_sample_wait_s": float(self.replay_info.get("sample_wait_s", 0.0)),
            "bottleneck": bottleneck,
        }


__all__ = [
    "DistributedConfig",
    "EnvActorWorker",
    "LearnerWorker",
    "PollState",
    "actor_exploration",
    "apex_epsilon",
    "init_ray",
    "run_distributed",
    "variable_names",
]
