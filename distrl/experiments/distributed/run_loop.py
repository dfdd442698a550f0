"""The poll loop of a distributed run: ``RunLoop`` polls the actors, evaluates, checkpoints and ends it.

The driver process polls the actors', the learner's and the replay
server's counters every ``poll_interval_s`` seconds (never blocking on a
busy or restarting actor), runs greedy evaluations with the latest
published weights every ``eval_every`` env steps, feeds the same
``RunRecorder`` as the single-process mode (progress bar, ``metrics.csv``,
``summary.json``) plus throughput figures, and stops everything once
``max_env_steps`` (or ``time_budget_s``) is reached, on an error, or on
SIGINT/SIGTERM. The env-step count may overshoot the budget by what the
actors step during one poll.

Checkpoints (``distributed/checkpoints.py``) come on the
``CheckpointSchedule`` and at the end; a signal ends the run with one and a
summary marked ``interrupted``. A replay server or learner that dies is
waited for while Ray restarts it (``replay_max_restarts``,
``learner_max_restarts``); the summary reports the restarts and what they lost.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import ray

from distrl.core import Actor
from distrl.experiments.checkpoints import CheckpointSchedule, checkpoint_store
from distrl.experiments.distributed.checkpoints import write_checkpoint
from distrl.experiments.distributed.components import RunComponents
from distrl.experiments.distributed.config import DistributedConfig
from distrl.experiments.distributed.monitoring import (
    ActorTracker,
    PollState,
    ReplayTracker,
    backpressure_fraction,
    bottleneck,
    throughput_figures,
    unreachable_since,
    weight_lag,
)
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.reporting import RunRecorder
from distrl.specs import EnvironmentSpec
from distrl.utils.seeding import derive_seed
from distrl.utils.signals import RunInterrupted, stop_requested
from distrl.variables.weight_store import RayVariableSource

#: Seconds between the ``distributed/...`` throughput rows of ``metrics.csv`` (at least one poll).
METRICS_PERIOD_S = 2.0

#: Seconds each part of the checkpoint written after a failure may take (the run is ending).
FAILURE_CHECKPOINT_TIMEOUT_S = 15.0

#: With ``time_budget_s``, the final evaluation (after the budget) may take this share of it (at least 5 s).
FINAL_EVALUATION_ALLOWANCE = 0.1


class RunLoop:
    """The poll loop of one run over its started ``RunComponents`` (see the module docstring)."""

    def __init__(
        self,
        components: RunComponents,
        dist: DistributedConfig,
        spec: EnvironmentSpec,
        recorder: RunRecorder,
        on_poll: Callable[[PollState], bool | None] | None,
        run_state: dict[str, Any] | None = None,
    ) -> None:
        self.components = components
        self.config = components.config
        self.dist = dist
        self.recorder = recorder
        self.on_poll = on_poll
        self.trackers = [ActorTracker(h, share) for h, share in zip(components.actors, components.step_shares)]
        self.learner_stats: dict[str, Any] = {}
        self.learner_pending: "ray.ObjectRef | None" = None
        self.learner_incarnations: list[str] = []
        self.learner_steps_offset = 0
        self.learner_unreachable_since: float | None = None
        self.replay_info: dict[str, Any] = {}
        self.replay = ReplayTracker()
        # A resumed run counts on from its checkpoint; the actors count from 0.
        self.env_steps_offset = 0 if run_state is None else int(run_state["env_steps"])
        self.env_steps = self.env_steps_offset
        self.next_eval = self.config.eval_every if run_state is None else int(run_state["next_eval"])
        self.store = checkpoint_store(self.config, recorder.run_dir)
        self.checkpoints_written = 0
        self.weight_lag_sum, self.weight_lag_samples = 0.0, 0  # Over the run's metric rows.
        self.checkpoint_failures = 0
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
        """Polls until the budget, ``time_budget_s``, ``on_poll``, ``on_evaluation`` or a signal ends
        the run; checkpoints when due and at the end; returns the summary."""
        config, dist, recorder = self.config, self.dist, self.recorder
        recorder.start_training()
        start = time.perf_counter()
        start_monotonic = time.monotonic()
        last_metrics_time = start
        last_metrics: tuple[int, int | None, float] = (self.env_steps, None, start)  # None: the learner's start.
        schedule = CheckpointSchedule(config, self.env_steps)
        stopped_by_evaluation = False
        end_reason = "budget"
        while True:
            time.sleep(self._sleep_s(start))
            self._poll()
            now = time.perf_counter()
            learner_steps = int(self.learner_stats.get("steps", 0))
            if now - last_metrics_time >= max(METRICS_PERIOD_S, dist.poll_interval_s):
                steps0, updates0, t0 = last_metrics
                updates0 = self.learner_steps_offset if updates0 is None else updates0
                figures = throughput_figures(
                    self.trackers, self.learner_stats, self.replay_info,
                    self.env_steps - steps0, learner_steps - updates0, now - t0,
                )
                recorder.logger.write({f"distributed/{k}": v for k, v in figures.items()}, self.env_steps)
                if self.learner_stats.get("published_version", 0) > 0 and all(t.last for t in self.trackers):
                    self.weight_lag_sum += figures["weight_lag"]  # Not the warm-up, when nothing was published.
                    self.weight_lag_samples += 1
                last_metrics, last_metrics_time = (self.env_steps, learner_steps, now), now
            recorder.progress(self.env_steps, learner_steps, extra=self._progress_extra())
            if stop_requested() is not None:
                end_reason = "signal"
                break
            if self._stop_requested(now - start, learner_steps):
                end_reason = "on_poll"
                break
            if self.env_steps >= config.max_env_steps or self._shares_taken():
                break
            if dist.time_budget_s is not None and now - start >= dist.time_budget_s:
                end_reason = "time_budget"
                break
            if self.env_steps >= self.next_eval:
                stopped_by_evaluation = self._run_evaluation(self._evaluation_deadline(start_monotonic, final=False))
                if stopped_by_evaluation:
                    end_reason = "on_evaluation"
                    break
                self.next_eval = (self.env_steps // config.eval_every + 1) * config.eval_every
            if schedule.due(self.env_steps):
                self.checkpoint()
                schedule.done(self.env_steps)
        running_s = time.perf_counter() - start
        self._stop_all()
        learner_steps = int(self.learner_stats.get("steps", 0))
        if not stopped_by_evaluation and end_reason != "signal":
            self._run_evaluation(self._evaluation_deadline(start_monotonic, final=True))
        self.checkpoint()
        extra = {"end_reason": end_reason, "distributed": self._summary(running_s), "replay": self.replay_info,
                 "checkpoint_failures": self.checkpoint_failures}
        signal_number = stop_requested()
        if end_reason == "signal" and signal_number is not None:
            recorder.finish(self.env_steps, learner_steps, extra=extra, status="interrupted",
                            error=RunInterrupted(signal_number))
            raise RunInterrupted(signal_number)
        return recorder.finish(self.env_steps, learner_steps, extra=extra)

    def checkpoint(self, timeout_s: float | None = None) -> Path | None:
        """Writes a checkpoint of the run as of the last poll (``write_checkpoint``, each part
        within ``timeout_s``, default ``wait_timeout_s``); a failure to write one is reported and
        counted, not fatal."""
        run_state = {
            "mode": self.dist.mode, "env_steps": self.env_steps, "next_eval": self.next_eval,
            "recorder": self.recorder.get_state(self.env_steps),
            "policies": [None if t.last is None else t.last.get("policy_state") for t in self.trackers],
        }
        folder = write_checkpoint(
            self.config, self.store, self.components.learner, self.components.server, self.components.table,
            self.env_steps, run_state, self.dist.wait_timeout_s if timeout_s is None else timeout_s,
        )
        if folder is None:
            self.checkpoint_failures += 1
        else:
            self.checkpoints_written += 1
        return folder

    def checkpoint_after_failure(self) -> None:
        """A last checkpoint for a run that fails (e.g. an environment over ``max_env_failures``),
        when the learner and the replay server can still write one; never raises."""
        try:
            self.checkpoint(timeout_s=min(self.dist.wait_timeout_s, FAILURE_CHECKPOINT_TIMEOUT_S))
        except Exception as error:  # noqa: BLE001 - e.g. NonFiniteLossError: no corrupted weights saved.
            print(f"distrl: no checkpoint after the failure: {type(error).__name__}: {error}", file=sys.stderr)

    def _stop_requested(self, elapsed_s: float, learner_steps: int) -> bool:
        if self.on_poll is None:
            return False
        return bool(self.on_poll(PollState(
            self.env_steps, learner_steps, elapsed_s, list(self.components.actors),
            [t.last for t in self.trackers], [t.restarts for t in self.trackers],
            [dict(t.steps_by_incarnation) for t in self.trackers],
            self.components.learner, dict(self.learner_stats), self.components.server, self.replay.restarts,
            self.recorder.run_dir,
        )))

    def _shares_taken(self) -> bool:
        """Every actor has taken its share of the budget, or has stalled while the others have."""
        trackers = self.trackers
        return any(t.at_step_limit for t in trackers) and all(t.at_step_limit or t.stalled for t in trackers)

    def _sleep_s(self, start: float) -> float:
        """Seconds until the next poll: ``poll_interval_s``, or less when the
        budget would run out sooner at the throughput so far (keeps the
        overshoot past ``max_env_steps`` small); never under 50 ms."""
        elapsed = time.perf_counter() - start
        remaining = self.config.max_env_steps - self.env_steps
        stepped = self.env_steps - self.env_steps_offset  # This run's own steps (a resumed run counts on).
        if stepped <= 0 or elapsed <= 0:
            return self.dist.poll_interval_s
        rate = stepped / elapsed
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
        self.env_steps = self.env_steps_offset + sum(t.env_steps for t in self.trackers)
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
        self._poll_replay(now)

    def _poll_replay(self, now: float) -> None:
        """Takes the replay server's poll reply when it is ready. A server that died is waited for
        while Ray restarts it (``replay_max_restarts``); with 0 restarts the run ends here."""
        replay, components = self.replay, self.components
        if replay.pending is not None:
            ready, _ = ray.wait([replay.pending], timeout=0)
            if not ready:
                return
            ref, replay.pending = replay.pending, None
            try:
                info, report = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                replay.unreachable_since = unreachable_since(
                    "the replay server", "replay_max_restarts", self.dist.replay_max_restarts,
                    replay.unreachable_since, now, self.dist.wait_timeout_s, error,
                )
            else:
                replay.update(info, report)
                self.replay_info = info
        replay.pending = components.server.poll.remote(components.table)

    def _final_replay_info(self) -> None:
        """The table's counters at the end (kept as of the last poll when the server cannot answer)."""
        components = self.components
        try:
            info, report = ray.get(components.server.poll.remote(components.table), timeout=self.dist.wait_timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return
        self.replay.update(info, report)
        self.replay_info = info

    def _take_learner_stats(self, stats: dict[str, Any]) -> None:
        if stats["error"]:
            raise RuntimeError(f"learner failed:\n{stats['error']}")
        if stats["incarnation"] not in self.learner_incarnations:
            if not self.learner_incarnations:  # A resumed run's learner starts at its checkpoint's steps.
                self.learner_steps_offset = int(stats.get("restored_from_steps") or 0)
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
        self.env_steps = self.env_steps_offset + sum(t.env_steps for t in self.trackers)
        self._take_learner_stats(ray.get(self.components.learner.stop.remote(), timeout=timeout))
        self._final_replay_info()

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
            # The Ray node each process ran on (a node id's first 8 hex digits): where a multi-node run placed them.
            "learner_node": (learner.get("node_id") or "")[:8] or None,
            "actor_nodes": [None if t.last is None else (t.last.get("node_id") or "")[:8] or None for t in trackers],
            "running_s": round(running_s, 3),
            "env_steps_per_s": (self.env_steps - self.env_steps_offset) / running_s if running_s > 0 else 0.0,
            "env_steps_per_s_per_actor": [t.env_steps / running_s if running_s > 0 else 0.0 for t in trackers],
            "learner_updates_per_s": ((learner.get("steps", 0) - self.learner_steps_offset) / running_s
                                      if running_s > 0 else 0.0),
            "replay_size": info.get("size", 0),
            "samples_per_insert": info.get("samples_per_insert", 0.0),
            # While acting (the metric rows); the final figures include the updates after the actors stopped.
            "weight_lag_mean": (self.weight_lag_sum / self.weight_lag_samples if self.weight_lag_samples
                                else weight_lag(trackers, learner)),
            "published_version": learner.get("published_version", -1),
            "publish_period": learner.get("publish_period"),
            "actor_policy_versions": per_actor("policy_version"),
            "actor_version_regressions": sum(0 if t.last is None else t.last["version_regressions"] for t in trackers),
            "actor_exploration": per_actor("exploration"),
            "actor_policy_exploration": per_actor("policy_exploration"),
            "actor_restarts": [t.restarts for t in trackers],
            "learner_restarts": max(0, len(self.learner_incarnations) - 1),
            "learner_restored_from_steps": learner.get("restored_from_steps"),
            "learner_restore_note": learner.get("restore_note"),
            "learner_checkpoints": learner.get("checkpoints", 0),
            "learner_checkpoint_s": float(learner.get("checkpoint_s", 0.0)),
            "checkpoints_written": self.checkpoints_written,
            "replay_restarts": self.replay.restarts,
            "replay_lost_inserts": self.replay.lost_inserts,
            "replay_restored_from": self.replay.restored_from,
            "actor_lost_insert_calls": sum(0 if t.last is None else t.last.get("lost_insert_calls", 0)
                                           for t in trackers),
            "env_failures": per_actor("env_failures"),
            "env_failure_causes": [cause for t in trackers if t.last is not None
                                   for cause in t.last.get("env_failure_causes", [])],
            "learner_wait_fraction": wait_fraction,
            "actor_backpressure_wait_fraction": backpressure,
            "replay_insert_wait_s": server_insert_wait,
            "replay_sample_wait_s": float(info.get("sample_wait_s", 0.0)),
            "bottleneck": bottleneck(self.config.builder.synchronous, wait_fraction, backpressure, server_insert_wait),
        }
