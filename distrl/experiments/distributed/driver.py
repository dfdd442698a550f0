"""The driver: ``run_distributed`` starts a run's Ray actors, polls them, evaluates, and stops them.

The driver (the calling process) polls the actors' and the learner's
counters every ``poll_interval_s`` seconds (never blocking on a busy or
restarting actor), runs greedy evaluations with the latest published
weights every ``eval_every`` env steps, feeds the same ``RunRecorder`` as the
single-process mode (progress bar, ``metrics.csv``, ``summary.json``) plus
throughput figures, and stops everything once ``max_env_steps`` (or
``time_budget_s``) is reached, on an error, or on Ctrl-C. The env-step
count may overshoot the budget by what the actors step during one poll.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import ray
import torch

from distrl.core import Actor
from distrl.errors import TrainingError
from distrl.experiments.config import ExperimentConfig, build_networks, experiment_record
from distrl.experiments.distributed.components import RunComponents
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.monitoring import (
    ActorTracker,
    PollState,
    backpressure_fraction,
    bottleneck,
    throughput_figures,
    unreachable_since,
    weight_lag,
)
from distrl.experiments.distributed.ray_setup import init_ray, resolve_learner_device
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.reporting import RunRecorder
from distrl.specs import EnvironmentSpec, make_environment_spec
from distrl.utils.checkpointing import save_checkpoint
from distrl.utils.config import ConfigError, require
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.variables.weight_store import RayVariableSource

#: Seconds between the ``distributed/...`` throughput rows of ``metrics.csv`` (at least one poll).
METRICS_PERIOD_S = 2.0

#: With ``time_budget_s``, the final evaluation (after the budget) may take this share of it (at least 5 s).
FINAL_EVALUATION_ALLOWANCE = 0.1


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
    ``distributed`` (throughput, lags, waits, restarts, per-actor
    exploration, the bottleneck) and ``replay`` (the table's counters).
    Raises ConfigError (a ValueError) for an ``envs_per_actor`` other than
    the builder's before Ray starts, ConnectionError when no cluster answers
    at ``dist.address``, ValueError when the cluster cannot serve the config
    (``learner_device='cuda'`` without a GPU), and ``TrainingError`` (from
    the original error, after writing a summary with status ``failed``) when
    the run fails once started.
    """
    dist = dist if dist is not None else DistributedConfig()
    if resume is not None:
        raise ConfigError("--resume is not available in local/cluster mode yet: resume the run with --mode debug")
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    builder = config.builder
    if dist.envs_per_actor is not None:
        require(dist.envs_per_actor == builder.envs_per_actor, "DistributedConfig", "envs_per_actor",
                dist.envs_per_actor,
                f"equal the agent's envs_per_actor ({builder.envs_per_actor}); set it in the agent config instead")
    probe = config.environment_factory(derive_seed(config.seed, "eval"))
    spec = make_environment_spec(probe)
    probe.close()
    build_networks(config, spec)  # An agent that cannot act in this env says so here, before Ray starts.

    if dist.address is None and dist.learner_device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("DistributedConfig.learner_device is 'cuda', but this machine has no CUDA device "
                          "(the local mode's Ray runs here); use auto or cpu")
    started_ray = init_ray(dist)
    handles: list = []
    try:
        # A cluster that cannot serve the learner device is a configuration error: before the run directory.
        device = resolve_learner_device(dist.learner_device, float(ray.cluster_resources().get("GPU", 0.0)))
        recorder = RunRecorder(
            config.run_dir, config.env, config.agent, config.seed, dist.mode, config.max_env_steps,
            {**experiment_record(config, spec), "distributed": dataclasses.asdict(dist)},
            config.reward_threshold, config.progress, config.tensorboard, config.wandb_project,
        )
        driver: _Driver | None = None
        try:
            components = RunComponents.start(config, dist, spec, device, recorder.run_dir, handles)
            driver = _Driver(components, dist, spec, recorder, on_poll)
            return driver.run()
        except BaseException as error:
            env_steps = 0 if driver is None else driver.env_steps
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


class _Driver:
    """The poll loop of one run over its started ``RunComponents``."""

    def __init__(
        self,
        components: RunComponents,
        dist: DistributedConfig,
        spec: EnvironmentSpec,
        recorder: RunRecorder,
        on_poll: Callable[[PollState], bool | None] | None,
    ) -> None:
        self.components = components
        self.config = components.config
        self.dist = dist
        self.recorder = recorder
        self.on_poll = on_poll
        self.trackers = [ActorTracker(handle) for handle in components.actors]
        self.learner_stats: dict[str, Any] = {}
        self.learner_pending: "ray.ObjectRef | None" = None
        self.learner_incarnations: list[str] = []
        self.learner_unreachable_since: float | None = None
        self.replay_info: dict[str, Any] = {}
        self.env_steps = 0
        self.eval_actor, self.eval_source = self._evaluation_actor(spec)

    @property
    def learner_steps(self) -> int:
        """The learner's step count as of the last poll."""
        return int(self.learner_stats.get("steps", 0))

    def _evaluation_actor(self, spec: EnvironmentSpec) -> tuple[Actor, RecordingVariableSource]:
        """A greedy actor that loads the newest published weights before each evaluation."""
        builder = self.config.builder
        networks = self.config.network_factory(spec)
        policy = builder.make_policy(networks, evaluation=True, seed=derive_seed(self.config.seed, "eval_policy"))
        source = RecordingVariableSource(
            RayVariableSource(self.components.store, blocking=True, timeout=self.dist.wait_timeout_s)
        )
        return builder.make_actor(policy, networks, source, None), source

    def _run_evaluation(self, deadline: float | None) -> bool:
        """An evaluation round with the newest published weights, cut at ``deadline``
        (``time.monotonic()``); True when ``on_evaluation`` asked the run to stop."""
        return evaluate_and_keep_best(
            self.config, self.eval_actor, self.eval_source, self.recorder, self.env_steps, self.learner_steps,
            deadline,
        )

    def _evaluation_deadline(self, start: float, final: bool) -> float | None:
        """With ``time_budget_s``: evaluations during the run end with the budget; the final one,
        which runs after it, gets ``FINAL_EVALUATION_ALLOWANCE`` of it (at least 5 s)."""
        budget = self.dist.time_budget_s
        if budget is None:
            return None
        if final:
            return time.monotonic() + max(5.0, FINAL_EVALUATION_ALLOWANCE * budget)
        return start + budget

    def run(self) -> dict[str, Any]:
        """Polls until the budget, ``time_budget_s`` or ``on_poll`` ends the run; returns the summary."""
        config, dist, recorder = self.config, self.dist, self.recorder
        start = time.perf_counter()
        start_monotonic = time.monotonic()
        last_metrics_time = start
        last_metrics = (0, 0, start)
        next_eval = config.eval_every
        stopped_by_evaluation = False
        end_reason = "budget"
        while True:
            time.sleep(self._sleep_s(start))
            self._poll()
            now = time.perf_counter()
            learner_steps = int(self.learner_stats.get("steps", 0))
            if now - last_metrics_time >= max(METRICS_PERIOD_S, dist.poll_interval_s):
                steps0, updates0, t0 = last_metrics
                figures = throughput_figures(
                    self.trackers, self.learner_stats, self.replay_info,
                    self.env_steps - steps0, learner_steps - updates0, now - t0,
                )
                recorder.logger.write({f"distributed/{k}": v for k, v in figures.items()}, self.env_steps)
                last_metrics, last_metrics_time = (self.env_steps, learner_steps, now), now
            recorder.progress(self.env_steps, learner_steps, extra=self._progress_extra())
            if self._stop_requested(now - start, learner_steps):
                end_reason = "on_poll"
                break
            if self.env_steps >= config.max_env_steps:
                break
            if dist.time_budget_s is not None and now - start >= dist.time_budget_s:
                end_reason = "time_budget"
                break
            if self.env_steps >= next_eval:
                stopped_by_evaluation = self._run_evaluation(self._evaluation_deadline(start_monotonic, final=False))
                if stopped_by_evaluation:
                    end_reason = "on_evaluation"
                    break
                next_eval = (self.env_steps // config.eval_every + 1) * config.eval_every
        running_s = time.perf_counter() - start
        self._stop_all()
        learner_steps = int(self.learner_stats.get("steps", 0))
        if not stopped_by_evaluation:
            self._run_evaluation(self._evaluation_deadline(start_monotonic, final=True))
        state = ray.get(self.components.learner.save.remote(), timeout=dist.wait_timeout_s)
        save_checkpoint(recorder.run_dir / "checkpoint.pt", {"learner": state})
        extra = {"end_reason": end_reason, "distributed": self._summary(running_s), "replay": self.replay_info}
        return recorder.finish(self.env_steps, learner_steps, extra=extra)

    def _stop_requested(self, elapsed_s: float, learner_steps: int) -> bool:
        if self.on_poll is None:
            return False
        return bool(self.on_poll(PollState(
            self.env_steps, learner_steps, elapsed_s, list(self.components.actors),
            [t.last for t in self.trackers], [t.restarts for t in self.trackers],
            [dict(t.steps_by_incarnation) for t in self.trackers],
            self.components.learner, dict(self.learner_stats),
        )))

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
                tracker.unreachable_since = unreachable_since(
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
                    self.learner_unreachable_since = unreachable_since(
                        "the learner", "learner_max_restarts", dist.learner_max_restarts,
                        self.learner_unreachable_since, now, dist.wait_timeout_s, error,
                    )
                else:
                    self.learner_unreachable_since = None
                    self._take_learner_stats(stats)
        if self.learner_pending is None:
            self.learner_pending = self.components.learner.stats.remote(self.env_steps)
        self.replay_info = self._replay_info()

    def _replay_info(self) -> dict[str, Any]:
        components = self.components
        return ray.get(components.server.info.remote(components.table), timeout=self.dist.wait_timeout_s)

    def _take_learner_stats(self, stats: dict[str, Any]) -> None:
        if stats["error"]:
            raise RuntimeError(f"learner failed:\n{stats['error']}")
        if stats["incarnation"] not in self.learner_incarnations:
            self.learner_incarnations.append(stats["incarnation"])
        for metrics, env_steps in stats.pop("rows"):
            self.recorder.logger.write(metrics, env_steps)
        self.learner_stats = stats

    def _record_episodes(self, episodes: list) -> None:
        """Logs finished episodes with the metric names the single-process mode uses."""
        for episode_return, length, steps_per_second in episodes:
            self.recorder.episode_done(episode_return)
            self.recorder.logger.write(
                {"charts/episodic_return": episode_return, "charts/episodic_length": length,
                 "charts/SPS": steps_per_second}, self.env_steps
            )

    def _progress_extra(self) -> dict[str, float]:
        """The bar's distributed figures: weight lag (learner steps) and the learner's wait share."""
        return {
            "lag": weight_lag(self.trackers, self.learner_stats),
            "wait": float(self.learner_stats.get("wait_fraction", 0.0)),
        }

    def _stop_all(self) -> None:
        """Stops the actors first (the learner still samples, so their last
        inserts are admitted), then the learner, collecting final counters."""
        timeout = self.dist.wait_timeout_s
        refs = [t.handle.stop.remote() for t in self.trackers]
        for tracker, ref in zip(self.trackers, refs):
            try:
                stats = ray.get(ref, timeout=timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue
            tracker.update(stats)
            self._record_episodes(stats["episodes"])
        self.env_steps = sum(t.env_steps for t in self.trackers)
        self._take_learner_stats(ray.get(self.components.learner.stop.remote(), timeout=timeout))
        self.replay_info = self._replay_info()

    def _summary(self, running_s: float) -> dict[str, Any]:
        learner, info, trackers = self.learner_stats, self.replay_info, self.trackers
        wait_fraction = float(learner.get("wait_fraction", 0.0))
        backpressure = backpressure_fraction(trackers)
        server_insert_wait = float(info.get("insert_wait_s", 0.0))

        def per_actor(key: str) -> list:
            return [None if t.last is None else t.last[key] for t in trackers]

        return {
            "mode": self.dist.mode,
            "num_actors": self.components.num_actors,
            "envs_per_actor": self.config.builder.envs_per_actor,
            "learner_device": self.components.device,
            "running_s": round(running_s, 3),
            "env_steps_per_s": self.env_steps / running_s if running_s > 0 else 0.0,
            "env_steps_per_s_per_actor": [t.env_steps / running_s if running_s > 0 else 0.0 for t in trackers],
            "learner_updates_per_s": learner.get("steps", 0) / running_s if running_s > 0 else 0.0,
            "replay_size": info.get("size", 0),
            "samples_per_insert": info.get("samples_per_insert", 0.0),
            "weight_lag_mean": weight_lag(trackers, learner),
            "published_version": learner.get("published_version", -1),
            "actor_policy_versions": per_actor("policy_version"),
            "actor_version_regressions": sum(0 if t.last is None else t.last["version_regressions"] for t in trackers),
            "actor_exploration": per_actor("exploration"),
            "actor_policy_exploration": per_actor("policy_exploration"),
            "actor_restarts": [t.restarts for t in trackers],
            "learner_restarts": max(0, len(self.learner_incarnations) - 1),
            "learner_restored_from_steps": learner.get("restored_from_steps"),
            "learner_checkpoints": learner.get("checkpoints", 0),
            "learner_checkpoint_s": float(learner.get("checkpoint_s", 0.0)),
            "learner_wait_fraction": wait_fraction,
            "actor_backpressure_wait_fraction": backpressure,
            "replay_insert_wait_s": server_insert_wait,
            "replay_sample_wait_s": float(info.get("sample_wait_s", 0.0)),
            "bottleneck": bottleneck(self.config.builder.synchronous, wait_fraction, backpressure, server_insert_wait),
        }
