"""What the driver knows about a running distributed experiment, and the figures it reports.

``ActorTracker`` follows one env actor across restarts; ``PollState`` is what
a poll hands to ``run_distributed``'s ``on_poll``; the functions turn the
trackers', learner's and replay server's counters into the throughput
figures of ``metrics.csv`` (``distributed/...``) and the summary, including
the bottleneck verdict.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import numpy as np
import ray

#: The learner waiting for data more than this share of its time makes the actors the bottleneck.
DATA_STARVED_WAIT_FRACTION = 0.1


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
    replay_server: Any = None
    """Handle of the replay server actor."""
    replay_restarts: int = 0
    """Restarts of the replay server seen so far (a new incarnation answered)."""
    run_dir: Any = None
    """The run directory (a ``pathlib.Path``)."""


class ActorTracker:
    """The driver's view of one environment actor across restarts.

    Counters are kept per incarnation (a restarted actor starts its own from
    zero), so the actor's totals are sums over every incarnation seen.
    ``share`` is the env steps the actor may take in the run. A restarted
    incarnation starts with a limit of 0 and is told its limit, the share
    less what the earlier ones reported (steps a dead incarnation took after
    its last report are not counted anywhere). ``stalled`` says the actor has
    not stepped for ``STALL_S`` seconds, e.g. a synchronous actor waiting for
    a version the learner cannot make once the others have stopped.
    """

    def __init__(self, handle: "ray.actor.ActorHandle", share: int) -> None:
        self.handle = handle
        self.share = share
        self._limit_sent: tuple[str, int] | None = None
        self.step_limit = share
        self._progress: tuple[int, float] = (-1, time.perf_counter())
        self.pending: "ray.ObjectRef | None" = None
        self.last: dict[str, Any] | None = None
        self.steps_by_incarnation: dict[str, int] = {}
        self.insert_wait_by_incarnation: dict[str, float] = {}
        self.elapsed_by_incarnation: dict[str, float] = {}
        self.restarts = 0
        self.unreachable_since: float | None = None

    @property
    def env_steps(self) -> int:
        """Env steps of every incarnation together."""
        return sum(self.steps_by_incarnation.values())

    def update(self, stats: dict[str, Any]) -> None:
        """Takes an ``EnvActorWorker.stats()`` reply; a new incarnation counts as a restart."""
        incarnation = stats["incarnation"]
        if self.steps_by_incarnation and incarnation not in self.steps_by_incarnation:
            self.restarts += 1
        earlier = self.env_steps - self.steps_by_incarnation.get(incarnation, 0)
        self.step_limit = self.share - earlier
        if stats.get("step_limit") is not None and stats["step_limit"] != self.step_limit \
                and self._limit_sent != (incarnation, self.step_limit):
            self.handle.set_step_limit.remote(self.step_limit)
            self._limit_sent = (incarnation, self.step_limit)
        self.steps_by_incarnation[incarnation] = int(stats["env_steps"])
        if self.env_steps != self._progress[0]:
            self._progress = (self.env_steps, time.perf_counter())
        self.insert_wait_by_incarnation[incarnation] = float(stats["insert_wait_s"])
        self.elapsed_by_incarnation[incarnation] = float(stats["elapsed_s"])
        self.last = stats
        self.unreachable_since = None

    @property
    def at_step_limit(self) -> bool:
        """True when the actor's last reply said it has taken its share of the budget (under the
        limit the driver set: a restarted incarnation waiting for its limit has not)."""
        last = self.last
        return bool(last is not None and last.get("at_step_limit") and last.get("step_limit") == self.step_limit)

    @property
    def stalled(self) -> bool:
        """True when the actor's step count has not moved for ``STALL_S`` seconds."""
        return time.perf_counter() - self._progress[1] > STALL_S


#: Seconds without a step after which the driver counts an actor as stalled: when every other
#: actor has taken its share, the run then ends at the budget instead of waiting for it.
STALL_S = 30.0


def unreachable_since(
    what: str, option: str, max_restarts: int, since: float | None, now: float, timeout_s: float,
    error: Exception,
) -> float:
    """The driver's answer to a stats call that failed because ``what``'s
    process died: Ray restarts it (up to ``max_restarts``, the option named
    ``option``) and it resumes by itself. Raises RuntimeError when it will
    not be restarted or has been unreachable for more than ``timeout_s``
    seconds; otherwise returns since when (``time.perf_counter()``) it has been."""
    if max_restarts == 0:
        raise RuntimeError(f"{what} died ({option}=0): {error}") from error
    if since is None:
        return now
    if now - since > timeout_s:
        raise RuntimeError(
            f"{what} has been unreachable for {timeout_s:g} s ({option}={max_restarts}): {error}"
        ) from error
    return since


class ReplayTracker:
    """The driver's view of the replay server across restarts (``replay_max_restarts``).

    ``update`` takes each ``ReplayServer.poll()`` reply; a new
    ``incarnation`` means Ray restarted the server, and the inserts the
    driver saw before (as of its last poll) that the restored table lacks
    are the lost window (a lower bound: inserts after that poll are lost
    too; the actors count the insert calls the dead server took with it).
    """

    def __init__(self) -> None:
        self.pending: Any = None
        self.incarnation: str | None = None
        self.last_inserts = 0
        self.restarts = 0
        self.lost_inserts = 0
        self.restored_from: list[str | None] = []
        self.unreachable_since: float | None = None

    def update(self, info: dict[str, Any], report: dict[str, Any]) -> None:
        """Takes a poll reply: notes a restart (and the window it lost) when the incarnation changed."""
        if self.incarnation is not None and report["incarnation"] != self.incarnation:
            self.restarts += 1
            self.lost_inserts += max(0, self.last_inserts - int(report.get("restored_inserts", 0)))
            self.restored_from.append(report.get("restored_from"))
        self.incarnation = report["incarnation"]
        self.last_inserts = int(info.get("inserts", 0))
        self.unreachable_since = None


def weight_lag(trackers: Sequence[ActorTracker], learner_stats: dict[str, Any]) -> float:
    """Mean over actors of (latest published version - actor's version), in learner steps."""
    published = learner_stats.get("published_version", 0)
    lags = [published - t.last["policy_version"] for t in trackers if t.last is not None]
    return float(np.mean(lags)) if lags else 0.0


def backpressure_fraction(trackers: Sequence[ActorTracker]) -> float:
    """Share of the actors' time spent waiting on backpressure (outstanding inserts)."""
    wait = sum(sum(t.insert_wait_by_incarnation.values()) for t in trackers)
    elapsed = sum(sum(t.elapsed_by_incarnation.values()) for t in trackers)
    return wait / elapsed if elapsed > 0 else 0.0


def throughput_figures(
    trackers: Sequence[ActorTracker], learner_stats: dict[str, Any], replay_info: dict[str, Any],
    env_steps: int, updates: int, seconds: float,
) -> dict[str, float]:
    """The ``distributed/...`` rows of ``metrics.csv`` over an interval of ``seconds``
    in which the actors made ``env_steps`` and the learner ``updates``."""
    return {
        "env_steps_per_s": env_steps / max(seconds, 1e-9),
        "learner_updates_per_s": updates / max(seconds, 1e-9),
        "replay_size": float(replay_info.get("size", 0)),
        "samples_per_insert": float(replay_info.get("samples_per_insert", 0.0)),
        "weight_lag": weight_lag(trackers, learner_stats),
        "learner_wait_fraction": float(learner_stats.get("wait_fraction", 0.0)),
        "actor_backpressure_wait_fraction": backpressure_fraction(trackers),
    }


def bottleneck(synchronous: bool, wait_fraction: float, backpressure: float, insert_wait_s: float) -> str:
    """One sentence naming what limits throughput, and what would lift it.

    Synchronous on-policy runs are bound by the round trip; otherwise a
    learner waiting for data more than ``DATA_STARVED_WAIT_FRACTION`` of its
    time makes the actors (or replay) the bottleneck, else the learner is.
    """
    if synchronous:
        return (
            f"lockstep: synchronous on-policy learning, each update waits for a round from every actor and "
            f"each actor for the update (the learner waited {wait_fraction:.0%} of the time); the round trip "
            f"bounds throughput, and max_policy_lag > 0 runs asynchronously"
        )
    if wait_fraction > DATA_STARVED_WAIT_FRACTION:
        return (
            f"actors/replay: the learner waited for data {wait_fraction:.0%} of the time; "
            f"more env actors (or envs per actor) or a higher replay ratio would keep it busy"
        )
    return (
        f"learner: it waited for data only {wait_fraction:.0%} of the time while actors spent "
        f"{backpressure:.0%} of theirs on backpressure and inserts waited {insert_wait_s:.1f} s "
        f"on the rate limiter; a faster learner (GPU, larger batch) would raise throughput"
    )
