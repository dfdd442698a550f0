"""The learner process: learner steps in a background thread, weights published by version.

The learner reads the replay server through a ``PrefetchingIterator``
(``prefetch`` sample calls in flight, each fetching
``sample_batches_per_call`` batches), runs ``builder.make_learner``'s
``step()`` in a loop and publishes its weights every ``publish_period``
steps (one ``ray.put`` per version, ``WeightPublisher``); it gets a GPU when
``learner_device`` resolves to CUDA. It writes its part of the run's
checkpoints when the driver asks (``checkpoint``), between two steps, and a
restarted learner resumes from the newest intact one.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Mapping

import ray
import torch

from distrl.agents.builder import Builder
from distrl.experiments.config import ExperimentConfig
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.ray_setup import was_restarted
from distrl.replay.prefetch import PrefetchingIterator, PrefetchStopped
from distrl.replay.ray_client import RayReplayClient
from distrl.replay.server import CLIENT_TIMEOUT_MARGIN_S
from distrl.specs import EnvironmentSpec
from distrl.experiments.checkpoints import LEARNER_FILE
from distrl.utils.checkpointing import CheckpointError, CheckpointStore, load_checkpoint, save_checkpoint
from distrl.utils.config import require
from distrl.utils.counting import Counter
from distrl.utils.loggers import BufferLogger
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.utils.tensors import to_cpu
from distrl.variables.weight_store import WeightPublisher


#: Env steps of data between weight publishes by default, for an agent whose replay ratio is known
#: (``Builder.updates_per_env_step``): DQN's and DDPG's defaults (0.5 updates per env step) then
#: publish every 100 learner steps, the Ape-X config (0.125) every 25 (``DistributedConfig.publish_period``).
PUBLISH_EVERY_ENV_STEPS = 200

#: The shortest default period for a replay agent: at a low replay ratio 200 env steps are one or
#: two updates, and a publish costs the learner's process about as much CPU as a small update (and
#: the weight store and every actor that fetches it some more). ``bench system --profiles
#: unthrottled`` (0.0078 updates per env step) made 12.0-12.5k env steps/s publishing every 2
#: steps, 13.8k every 10 and 14.1k every 25 with one actor.
MIN_PUBLISH_PERIOD = 10

#: Learner steps between publishes for an asynchronous agent without a replay ratio (A2C with
#: ``max_policy_lag`` other than 0), unless its lag limit asks for less.
ASYNC_PUBLISH_PERIOD = 25


def default_publish_period(builder: Builder) -> int:
    """Learner steps between weight publishes when ``DistributedConfig.publish_period`` is None.

    1 for a synchronous agent (its actors wait for every version). Otherwise about every
    ``PUBLISH_EVERY_ENV_STEPS`` env steps of data at the agent's replay ratio, but not under
    ``MIN_PUBLISH_PERIOD`` learner steps, or ``ASYNC_PUBLISH_PERIOD`` without a ratio; and never
    more than half the agent's ``max_policy_lag`` (at least 1), so actors hold fresh enough
    weights again before the learner would drop everything they send.
    """
    if builder.synchronous:
        return 1
    if builder.updates_per_env_step is None:
        period = ASYNC_PUBLISH_PERIOD
    else:
        period = max(MIN_PUBLISH_PERIOD, round(PUBLISH_EVERY_ENV_STEPS * builder.updates_per_env_step))
    if builder.max_policy_lag is not None:
        period = min(period, max(1, builder.max_policy_lag // 2))
    return period


@dataclasses.dataclass(frozen=True)
class SamplingPlan:
    """How the learner reads the replay server and publishes weights."""

    sample_size: int
    """Items per sample call."""
    batches_per_call: int
    """Learner batches per sample call."""
    publish_period: int
    """Learner steps between weight publishes."""

    @classmethod
    def of(cls, builder: Builder, dist: DistributedConfig, is_queue: bool) -> "SamplingPlan":
        """Replay tables: ``sample_batches_per_call`` batches per call (amortises
        the round trip). A queue (on-policy segments, each handed out once) is
        read one actor round (``envs_per_actor`` items) per call: rounds arrive
        whole (``Builder.make_adders``), so a call never waits on part of a round
        that only the next weight version will complete, and the learner
        assembles its batch from rounds. A synchronous builder's actors wait
        for every new version, so it is published after every step."""
        publish_period = dist.publish_period if dist.publish_period is not None else default_publish_period(builder)
        require(publish_period == 1 or not builder.synchronous, "DistributedConfig", "publish_period",
                dist.publish_period, f"be 1 or None for a synchronous agent ({type(builder).__name__}: its actors "
                f"wait for every new version)")
        lag = builder.max_policy_lag
        require(lag is None or publish_period <= max(lag, 1), "DistributedConfig", "publish_period",
                dist.publish_period, f"be at most the agent's max_policy_lag ({lag}) or None: once the learner "
                f"is more than {lag} steps past the last publish it drops every segment the actors send, and "
                f"it would never reach the next publish")
        if is_queue:
            return cls(builder.envs_per_actor, 1, publish_period)
        return cls(builder.batch_size, dist.sample_batches_per_call, publish_period)


class LearnerWorker:
    """The learner process: learner steps in a background thread, weights published.

    The constructor builds the learner and publishes version 0 (so actors
    can start acting at once); ``start()`` starts stepping; ``stop()`` ends
    the thread (a wait for data is interrupted), publishes the final version
    and returns the final stats. ``checkpoint(path)`` (the driver's periodic
    checkpoints) has the learner thread write its state between two steps.

    ``checkpoint_root`` is the run's checkpoint store. When Ray restarts the
    process after a crash, the constructor restores the newest intact
    checkpoint there (damaged ones are skipped; with none intact it starts
    afresh and says so in ``stats()["restore_note"]``, never failing its
    constructor, which Ray would not retry) and starts stepping by itself.
    ``restore_from`` (a resumed run) names the checkpoint folder to start
    from. Either way the step count (the weight version) becomes at least
    one more than the newest version in the weight store, so versions only
    increase and the actors load the restored weights at once; the updates
    made after the checkpoint are lost.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        spec: EnvironmentSpec,
        server_name: str,
        table: str,
        store_name: str,
        device: str,
        dist: DistributedConfig,
        sampling: SamplingPlan,
        checkpoint_root: str,
        restore_from: str | None = None,
    ) -> None:
        # Plain values only (the server and store are looked up by name), so that
        # Ray can rerun this constructor on a restart: it cannot be relied on to keep
        # constructor arguments that live in the object store (ray-project/ray#53727).
        server, store = ray.get_actor(server_name), ray.get_actor(store_name)
        restarted = was_restarted()
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
        self._checkpoint_root = Path(checkpoint_root)
        self._checkpoint_request: tuple[Path, threading.Event, list] | None = None
        self._checkpoint_lock = threading.Lock()
        self._iterator = PrefetchingIterator(
            self._client, sampling.sample_size, dist.prefetch, self._device,
            timeout=dist.wait_timeout_s + CLIENT_TIMEOUT_MARGIN_S, stop_event=self._stop,
            batches_per_call=sampling.batches_per_call, on_wait=self._serve_checkpoint_request,
        )
        self._counter = Counter()
        self._logger = BufferLogger()
        networks = config.network_factory(spec)
        self._learner = builder.make_learner(
            networks, self._iterator, self._client, self._counter, self._logger, self._device
        )
        self.checkpoints = 0
        self.checkpoint_s = 0.0
        self.restored_from_steps: int | None = None
        self.restore_note: str | None = None
        self._error: str | None = None
        if restarted or restore_from is not None:
            self._restore(newest_version, None if restore_from is None else Path(restore_from))
        self._publisher = WeightPublisher(
            self._learner, store, sampling.publish_period, builder.variable_names, timeout=dist.wait_timeout_s,
            publisher=self.incarnation,
        )
        self._thread: threading.Thread | None = None
        self._steady_start: tuple[float, float] | None = None  # (time, wait_s) after the first batch.
        if self._error is None:
            self._publisher.publish()
            self._publisher.flush()
            if restarted:
                self.start()

    def _restore(self, newest_version: int, folder: Path | None) -> None:
        """Loads ``folder``'s learner state, or the newest intact checkpoint's, and moves the step
        count past the newest published version. With no checkpoint at all (a crash before the
        first) the learner starts afresh, noted in ``restore_note``; when checkpoints exist but
        none is intact, ``stats()`` reports the error naming them and the learner does not step,
        so the driver ends the run at once (an exception here would kill the process for good,
        as Ray does not retry a failed constructor, and the driver would wait for it)."""
        notes = []
        if folder is None:
            folder, skipped = CheckpointStore(self._checkpoint_root).latest_intact()
            notes += [f"skipped {path}: {why}" for path, why in skipped]
            if folder is None and skipped:
                self._error = ("the restarted learner found no intact checkpoint to restore: "
                               + "; ".join(notes))
                return
        state = None
        if folder is not None:
            try:
                state = dict(load_checkpoint(folder / LEARNER_FILE)["learner"])
                self.restored_from_steps = int(state["steps"])
            except (CheckpointError, OSError, KeyError) as error:
                self._error = f"the restarted learner could not load {folder / LEARNER_FILE}: {error}"
                return
        if state is None:
            notes.append("no checkpoint yet: the restarted learner starts afresh")
            state = dict(self._learner.save())
        self.restore_note = "; ".join(notes) or None
        state["steps"] = max(int(state["steps"]), int(newest_version) + 1)
        self._learner.restore(state)

    def checkpoint(self, path: str, timeout: float) -> dict[str, float]:
        """Writes the learner's state to ``path`` (the driver's checkpoint folder) between two
        learner steps, or while the learner waits for data (at once when the thread is not stepping); returns its step count and the
        seconds it took. Raises TimeoutError when no step boundary came within ``timeout``."""
        if self._error is not None:
            raise RuntimeError(f"the learner failed, so it writes no checkpoint: {self._error.strip().splitlines()[-1]}")
        done = threading.Event()
        result: list = []
        with self._checkpoint_lock:
            if self._thread is None or not self._thread.is_alive():
                self._write_checkpoint(Path(path), result)
                done.set()
            else:
                self._checkpoint_request = (Path(path), done, result)
        if not done.wait(timeout):
            self._checkpoint_request = None
            raise TimeoutError(f"the learner reached no step boundary within {timeout:g} s to write {path}")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def _write_checkpoint(self, path: Path, result: list) -> None:
        start = time.perf_counter()
        try:
            save_checkpoint(path, {"learner": to_cpu(self._learner.save())})
        except BaseException as error:  # noqa: BLE001 - handed back to the caller of checkpoint().
            result.append(error)
            return
        seconds = time.perf_counter() - start
        self.checkpoints += 1
        self.checkpoint_s += seconds
        result.append({"steps": float(self._learner.steps), "seconds": seconds})

    def _serve_checkpoint_request(self) -> None:
        with self._checkpoint_lock:
            request, self._checkpoint_request = self._checkpoint_request, None
        if request is not None:
            path, done, result = request
            self._write_checkpoint(path, result)
            done.set()

    def start(self) -> None:
        """Starts the learner thread (idempotent; not after a failed restore)."""
        if self._thread is None and self._error is None:
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
                if self._checkpoint_request is not None:
                    self._serve_checkpoint_request()
        except PrefetchStopped:
            pass
        except Exception:  # noqa: BLE001 - reported to the driver by stats().
            self._error = traceback.format_exc()

    @ray.method(enable_task_events=False)
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
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "restored_from_steps": self.restored_from_steps,
            "restore_note": self.restore_note,
            "checkpoints": self.checkpoints,
            "checkpoint_s": self.checkpoint_s,
            "published_version": self._publisher.version,
            "publish_period": self._publisher.publish_period,
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
        weights (not while the thread still steps: publishing reads state the
        thread changes) and returns the final ``stats()``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._iterator.close()
        stepping = self._thread is not None and self._thread.is_alive()  # The join timed out.
        if self._error is None and not stepping:
            self._publisher.publish()
            self._publisher.flush()
        return self.stats()

    def save(self) -> Mapping[str, Any]:
        """The learner's state with every tensor on the CPU (call after ``stop``)."""
        return to_cpu(self._learner.save())
