"""How a distributed run is spread over Ray actors: ``DistributedConfig``.

Every field is validated by name when the config is made, before Ray starts.
``LEARNER_DEVICES`` is the one list of learner devices (the CLI offers it).
"""

from __future__ import annotations

import dataclasses
import math

from distrl.utils.config import require


def _finite_positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0

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
    replay_max_restarts: int = 3
    """Ray restarts of a crashed replay server (it restores the newest replay checkpoint, or starts
    empty, and actors and learner carry on); 0: none, the run ends at once naming this option."""
    max_env_failures: int = 10
    """Environment failures (an exception or an invalid value from the env) one env actor survives
    by rebuilding its environments; the next one ends the run with the error."""
    publish_period: int | None = None
    """Learner steps between weight publishes (one ray.put each). None: about every 200 env
    steps of data at the agent's replay ratio (``Builder.updates_per_env_step``), but not more
    often than every 10 learner steps: every 100 at DQN's and DDPG's defaults, every 25 in the
    Ape-X config, every 10 at a low ratio such as ``bench system``'s unthrottled profile. A
    synchronous agent (A2C by default), whose actors wait for every version: 1. An asynchronous
    agent without a replay ratio: 25, or ``max_policy_lag // 2`` (at least 1) when that is
    less; a period over ``max_policy_lag`` is refused, since the learner would drop every
    segment before its next publish.

    Why env steps: that is how stale the actors' policy gets. The Ape-X config (0.125 updates
    per env step) publishing every 100 learner steps (800 env steps) left 3 of seeds 4, 5, 7
    and 8 unsolved in 100k env steps; every 25 solved all four. Why not more often: a publish
    costs the learner's process about 1.7 ms of CPU (the ray.put about 0.7 ms of it) and more
    in the weight store, the raylet and every actor that fetches it. Measured with ``bench
    system`` (DQN CartPole, 1 actor, 2 CPUs) on 2026-11-30, the learner made 830-838 updates/s
    publishing every 25 steps and 916-980 every 100 (0.79-0.86x of bare torch); on an older
    tree, 497 every 10 steps against 685 every 25."""
    update_period: int = 100
    """Env steps of an actor between checks for newer weights (the check never blocks); an actor
    stepping N environments checks every ``max(1, update_period // N)`` vector steps, and no actor
    more often than every 10 ms (``weight_store.MIN_CHECK_INTERVAL_S``)."""
    max_in_flight_inserts: int = 4
    """Insert calls one actor may have outstanding before it waits (backpressure)."""
    min_insert_interval_s: float = 0.01
    """Seconds in [0, 1] an actor leaves between insert calls: batches ready sooner are held and
    merged into the next call (``RayReplayClient``'s ``min_call_interval_s``), up to the table's
    merge limit, so a fast actor makes about max(1 / this, its items per second / the merge
    limit) calls per second, each costing about 0.25 ms of its thread's CPU whatever its size,
    and more on the replay server. An actor inserting at most once per interval is not delayed,
    and a held batch waits under twice the interval while inserts come regularly; 0: every
    batch is sent at once. Why 10 ms (measured on 2 CPUs on 2026-11-30, BENCHMARKS.md): ``bench
    actor`` made 0.47 of the reference with one environment per actor against 0.30 at 0, and
    0.52 with 8 against 0.44-0.50 (0.53 at 20 ms); in ``bench system`` the unthrottled profile stepped
    15.6k / 17.5k env steps/s with 1 / 2 actors against 13.0k / 10.6k, and the learner-bound
    default profile made 0.79-0.80x of bare torch against 0.68-0.75x, since the server answers
    fewer calls. Learning did not suffer: the Ape-X config solved seeds 0-3 at 20.6k, 65.8k,
    20.4k and 41.5k env steps against 66.1k, 30.6k, 45.8k and 30.4k at 0. Queue tables (A2C)
    never hold a batch (their merge limit is 0)."""
    prefetch: int = 2
    """Sample calls the learner keeps in flight."""
    sample_batches_per_call: int = 16
    """Learner batches fetched by one sample call (amortises the remote call and its
    deserialisation over several steps); always 1 for a queue table (on-policy agents). Measured
    in a Ray learner reading a filled replay server (DQN CartPole, batch 64, nothing else
    running) against the same learner on fixed in-process batches (1,058 updates/s): 4 per call
    790 updates/s, 8: 850, 16: 874-928, 32: 911. The
    rate limiter admits a call whole, so the replay ratio may drift by about one call's
    samples (16 x batch_size) around its target, and with prioritized replay up to
    ``prefetch`` calls are drawn before the learner's priority updates land; lower it for a
    replay ratio that must hold tightly."""
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
        for name in ("replay_max_restarts", "max_env_failures"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 0, owner, name, value,
                    "be an integer >= 0")
        require(self.publish_period is None or (isinstance(self.publish_period, int) and self.publish_period >= 1),
                owner, "publish_period", self.publish_period, "be a positive integer or None")
        for name in ("update_period", "max_in_flight_inserts", "prefetch", "sample_batches_per_call"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, owner, name, value, "be a positive integer")
        require(self.time_budget_s is None or _finite_positive(self.time_budget_s), owner, "time_budget_s",
                self.time_budget_s, "be a finite number > 0 (seconds) or None")
        require(self.address is None or (isinstance(self.address, str) and self.address.strip() != ""), owner,
                "address", self.address, 'be None, "auto" or host:port')
        require(self.num_cpus is None or (isinstance(self.num_cpus, int) and self.num_cpus >= 1), owner,
                "num_cpus", self.num_cpus, "be a positive integer or None")
        require(self.address is None or self.num_cpus is None, owner, "num_cpus", self.num_cpus,
                "be None when attaching to a cluster (address is set); the cluster has its own CPUs")
        require(isinstance(self.min_insert_interval_s, (int, float)) and not isinstance(self.min_insert_interval_s, bool)
                and 0 <= self.min_insert_interval_s <= 1, owner, "min_insert_interval_s", self.min_insert_interval_s,
                "be a number of seconds in [0, 1]")
        for name in ("poll_interval_s", "wait_timeout_s"):
            value = getattr(self, name)
            require(_finite_positive(value), owner, name, value, "be a finite number > 0 (seconds)")

    @property
    def mode(self) -> str:
        """``local`` (a private Ray instance) or ``cluster`` (attached to one)."""
        return "local" if self.address is None else "cluster"
