"""The environment-actor process: environments, an actor, a replay client and a weight source.

Actor ``index`` of N builds its environment(s) seeded
``derive_seed(seed, "env", index[, j])``, a policy at the exploration level
``builder.actor_exploration(index, N)``, the builder's actor (or batched
actor) writing through a ``RayReplayClient`` (at most
``max_in_flight_inserts`` inserts outstanding) and pulling weights through a
``RayVariableSource`` every ``update_period`` env steps. It then acts in a
background thread until ``stop()``, or until it has taken its ``step_limit``
env steps (its share of the run's budget: ``components.step_shares``), where it
waits for ``stop()``.

An exception from an environment (``raised_by_environment``: its reset or
step raised, or returned a value ``ValidatingWrapper`` refuses) does not end
the actor: it closes and rebuilds its environments from a fresh seed stream
and carries on, up to ``max_env_failures`` times; the next failure is
reported to the driver, which ends the run with it. ``stats()`` counts them.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import traceback
import uuid
from typing import Any, Mapping

import ray
import torch

from distrl.core import Actor, BatchedActor
from distrl.environment_loop import EnvironmentLoop, VectorEnvironmentLoop, raised_by_environment
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.ray_setup import was_restarted
from distrl.replay.ray_client import RayReplayClient
from distrl.specs import EnvironmentSpec
from distrl.utils.counting import Counter
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.variables.weight_store import RayVariableSource, WaitInterrupted

#: Vector steps per ``VectorEnvironmentLoop.run`` call between checks of the stop flag.
_VECTOR_CHUNK = 8


class EnvActorWorker:
    """One environment actor process (a Ray actor, restartable: ``max_restarts``).

    The replay server and weight store are found by their (per-run unique)
    actor names rather than passed as handles, so the constructor's arguments
    are plain values that Ray can always replay on a restart.

    The constructor returns at once; the thread pulls the latest weights
    (waiting for the first version) and then steps until ``stop()``. So a
    restart by Ray (which reruns the constructor) resumes acting without the
    driver doing anything: a restarted actor rebuilds its environments from a
    new seed, pulls the latest weights and carries on, with nothing to
    restore. A failure in the thread is kept and reported by ``stats()``
    rather than crashing the process, so the driver can report it.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        spec: EnvironmentSpec,
        index: int,
        num_actors: int,
        server_name: str,
        table: str,
        store_name: str,
        dist: DistributedConfig,
        policy_state: Mapping[str, Any] | None = None,
        step_limit: int | None = None,
    ) -> None:
        self.index = index
        # A restarted incarnation does not know what the dead one stepped: it waits for the driver's limit.
        self._step_limit = 0 if (step_limit is not None and was_restarted()) else step_limit
        self._limit_raised = threading.Event()
        self.incarnation = uuid.uuid4().hex
        seed = config.seed if not was_restarted() else derive_seed(config.seed, "restart", self.incarnation)
        seed_everything(derive_seed(seed, "actor", index))
        torch.set_num_threads(config.torch_threads)
        builder = config.builder
        self._config, self._seed = config, seed
        networks = config.network_factory(spec)
        server, store = ray.get_actor(server_name), ray.get_actor(store_name)
        self._client = RayReplayClient(server, table, dist.max_in_flight_inserts, timeout=dist.wait_timeout_s,
                                       min_call_interval_s=dist.min_insert_interval_s)
        # The source counts the variable client's checks (one per vector step with the default
        # variable_update_period of 1): update_period counts env steps.
        self._source = RayVariableSource(store, update_period=max(1, dist.update_period // builder.envs_per_actor),
                                         timeout=dist.wait_timeout_s)
        self.exploration = builder.actor_exploration(index, num_actors)
        self._policy = builder.make_policy(
            networks, evaluation=False, seed=derive_seed(seed, "policy", index), exploration=self.exploration
        )
        if policy_state is not None:
            self._policy.set_state(policy_state)
        self._stop = threading.Event()
        self._episodes: collections.deque[tuple[float, int, float]] = collections.deque(maxlen=10_000)
        self._counter = Counter()
        self._max_env_failures = dist.max_env_failures
        self.env_failures: list[str] = []
        if builder.envs_per_actor == 1:
            self._actor: Actor | BatchedActor = builder.make_actor(
                self._policy, networks, self._source, builder.make_adder(self._client, networks)
            )
        else:
            adders = builder.make_adders(self._client, builder.envs_per_actor, networks)
            self._actor = builder.make_batched_actor(self._policy, networks, self._source, adders)
        self._environments: list = []
        self._loop = self._build_loop(0)
        self._policy_version = -1
        self._version_regressions = 0
        self._error: str | None = None
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"distrl-env-actor-{index}", daemon=True)
        self._thread.start()

    def _build_loop(self, rebuilds: int) -> EnvironmentLoop | VectorEnvironmentLoop:
        """Builds the environments (seeded ``derive_seed(seed, "env", index[, j])``; after an env
        failure from a stream of their own) and the loop that steps them with the actor."""
        config, index, num_envs = self._config, self.index, self._config.builder.envs_per_actor
        stream = ("env",) if rebuilds == 0 else ("env-rebuild", rebuilds)
        if num_envs == 1:
            env_seeds = [derive_seed(self._seed, *stream, index)]
        else:
            env_seeds = [derive_seed(self._seed, *stream, index, j) for j in range(num_envs)]
        self._environments = [config.environment_factory(s) for s in env_seeds]
        if num_envs == 1:
            loop: EnvironmentLoop | VectorEnvironmentLoop = EnvironmentLoop(
                self._environments[0], self._actor, self._counter, on_episode_end=self._on_episode_end,
                should_stop=self._stop.is_set,
            )
            if rebuilds:
                loop.total_steps = self._loop.total_steps
            return loop
        return VectorEnvironmentLoop(self._environments, self._actor, self._counter,
                                     on_episode_end=self._on_episode_end)

    def _rebuild_after(self, error: Exception) -> None:
        """Counts an environment failure and rebuilds the environments (their open episodes are
        dropped: the adders start afresh at the next FIRST step); re-raises ``error`` once there
        have been ``max_env_failures`` before it."""
        if len(self.env_failures) >= self._max_env_failures:
            error.add_note(f"env actor {self.index}: environment failure {len(self.env_failures) + 1}, "
                           f"over max_env_failures={self._max_env_failures}")
            raise error
        self.env_failures.append(f"{type(error).__name__}: {error}"[:500])
        for environment in self._environments:
            try:
                environment.close()
            except Exception:  # noqa: BLE001 - a broken environment may not close cleanly either.
                pass
        self._loop = self._build_loop(len(self.env_failures))

    def _on_episode_end(self, result: Mapping[str, float]) -> None:
        if result["completed"]:
            self._episodes.append(
                (result["episode_return"], int(result["episode_length"]), result["steps_per_second"])
            )
            self._track_version()

    def _allowed_steps(self) -> int | None:
        """Env steps left under this incarnation's step limit (None: no limit)."""
        return None if self._step_limit is None else self._step_limit - self._env_steps

    @property
    def at_step_limit(self) -> bool:
        """True when the actor cannot step further under its limit (a vector actor steps all its
        environments at once, so it stops with fewer than ``envs_per_actor`` steps left)."""
        allowed = self._allowed_steps()
        return allowed is not None and allowed < self._config.builder.envs_per_actor

    def _run(self) -> None:
        try:
            self._actor.update(wait=True)
            self._track_version()
            while not self._stop.is_set():
                if self.at_step_limit:
                    self._client.send_held()  # Idle now: what the client held goes out.
                    self._limit_raised.wait(0.1)  # Until stop() or set_step_limit().
                    self._limit_raised.clear()
                    continue
                try:
                    if isinstance(self._loop, EnvironmentLoop):
                        # Returns early once stop() sets the flag; the limit cuts only the last episode.
                        self._loop.run_episode(max_steps=self._allowed_steps())
                    else:
                        self._run_vector(self._loop)
                except Exception as error:  # noqa: BLE001 - an environment's own failure is survivable.
                    if not raised_by_environment(error):
                        raise
                    self._rebuild_after(error)
        except WaitInterrupted:  # stop() ended a synchronous actor's wait for the next version.
            pass
        except Exception:  # noqa: BLE001 - reported to the driver by stats().
            self._error = traceback.format_exc()

    def _run_vector(self, loop: VectorEnvironmentLoop) -> None:
        """Lockstep vector steps in chunks, checking the stop flag and the step limit between chunks."""
        chunk = _VECTOR_CHUNK * loop.num_envs
        while not self._stop.is_set() and not self.at_step_limit:
            allowed = self._allowed_steps()
            steps = chunk if allowed is None else min(chunk, allowed // loop.num_envs * loop.num_envs)
            loop.run(num_steps=steps)

    @ray.method(enable_task_events=False)
    def set_step_limit(self, limit: int) -> None:
        """Sets how many env steps this incarnation may take in all (the driver lowers a restarted
        actor's limit by what its earlier incarnations stepped)."""
        self._step_limit = int(limit)
        self._limit_raised.set()

    @property
    def _env_steps(self) -> int:
        """Env steps so far: counted per step by the single-env loop, per vector step by the vector loop."""
        loop = self._loop
        if isinstance(loop, EnvironmentLoop):
            return loop.total_steps
        return int(self._counter.get("env_steps"))

    def _track_version(self) -> None:
        version = getattr(self._actor, "policy_version", -1)
        if version < self._policy_version:
            self._version_regressions += 1
        self._policy_version = version

    @ray.method(enable_task_events=False)
    def stats(self) -> dict[str, Any]:
        """Counters since this incarnation started; ``episodes`` are drained
        (each (return, length, env steps per second) is reported once). ``exploration`` is the
        level the builder gave this actor; ``policy_exploration`` what its
        policy explores with now (``Policy.exploration_state``)."""
        self._track_version()
        episodes = []
        while self._episodes:
            episodes.append(self._episodes.popleft())
        client = self._client.stats()
        return {
            "index": self.index,
            "incarnation": self.incarnation,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "env_steps": self._env_steps,
            "episodes": episodes,
            "policy_version": self._policy_version,
            "version_regressions": self._version_regressions,
            "versions_loaded": self._source.versions_loaded,
            "weight_fetch_errors": self._source.fetch_errors,
            "insert_wait_s": client["insert_wait_s"],
            "max_in_flight_inserts_seen": client["max_in_flight_seen"],
            "lost_insert_calls": int(client["lost_calls"]),
            "items_inserted": int(client["items_inserted"]),
            "items_held": int(client["items_buffered"]),
            "elapsed_s": time.perf_counter() - self._start,
            "exploration": self.exploration,
            "policy_exploration": self._policy.exploration_state(),
            "policy_state": self._policy.get_state(),
            "env_failures": len(self.env_failures),
            "env_failure_causes": list(self.env_failures[-3:]),
            "step_limit": self._step_limit,
            "at_step_limit": self.at_step_limit,
            "running": self._thread.is_alive(),
            "error": self._error,
        }

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stops stepping, waits (``timeout`` seconds at most) for the thread and
        its outstanding inserts, and returns the final ``stats()``."""
        self._stop.set()
        self._limit_raised.set()
        self._source.interrupt()
        self._thread.join(timeout)
        try:
            self._client.flush()
        except Exception:  # noqa: BLE001 - data of a stopping run; the stats still matter.
            pass
        return self.stats()
