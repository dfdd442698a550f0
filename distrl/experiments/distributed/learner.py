"""The learner process: learner steps in a background thread, weights published by version.

The learner reads the replay server through a ``PrefetchingIterator``
(``prefetch`` sample calls in flight, each fetching
``sample_batches_per_call`` batches), runs ``builder.make_learner``'s
``step()`` in a loop and publishes its weights every ``publish_period``
steps (one ``ray.put`` per version, ``WeightPublisher``); it gets a GPU when
``learner_device`` resolves to CUDA, and writes a checkpoint every
``learner_checkpoint_period_s`` that a restarted learner resumes from.
"""

from __future__ import annotations

import dataclasses
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
from distrl.utils.checkpointing import load_checkpoint, save_checkpoint
from distrl.utils.config import require
from distrl.utils.counting import Counter
from distrl.utils.loggers import BufferLogger
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.utils.tensors import to_cpu
from distrl.variables.weight_store import WeightPublisher


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
        publish_period = dist.publish_period if dist.publish_period is not None else (1 if builder.synchronous else 10)
        require(publish_period == 1 or not builder.synchronous, "DistributedConfig", "publish_period",
                dist.publish_period, f"be 1 or None for a synchronous agent ({type(builder).__name__}: its actors "
                f"wait for every new version)")
        if is_queue:
            return cls(builder.envs_per_actor, 1, publish_period)
        return cls(builder.batch_size, dist.sample_batches_per_call, publish_period)


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
        device: str,
        dist: DistributedConfig,
        sampling: SamplingPlan,
        checkpoint_path: str,
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
        self._iterator = PrefetchingIterator(
            self._client, sampling.sample_size, dist.prefetch, self._device,
            timeout=dist.wait_timeout_s + CLIENT_TIMEOUT_MARGIN_S, stop_event=self._stop,
            batches_per_call=sampling.batches_per_call,
        )
        self._counter = Counter()
        self._logger = BufferLogger()
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
            self._learner, store, sampling.publish_period, builder.variable_names, timeout=dist.wait_timeout_s,
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
        save_checkpoint(self._checkpoint_path, {"learner": to_cpu(self._learner.save())})
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
        return to_cpu(self._learner.save())
