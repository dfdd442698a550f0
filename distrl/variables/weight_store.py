"""Versioned weights on Ray: the learner publishes, actors pull only newer versions.

Pull, not push (RLlib's lesson: broadcasts to busy actors were dropped).
The learner puts each published version into the object store once
(``ray.put`` of CPU numpy arrays, which Ray stores zero-copy) and hands the
reference to a ``WeightStore`` actor; every actor asks the store for the
latest reference now and then, in the background, and fetches the arrays
only when the version is newer than its own. So publishing costs the
learner one ``ray.put`` per version whatever the number of actors, and a
slow or restarting actor never holds anyone up.

The published objects are owned by the learner process that put them (Ray
>= 2.56 has no way to hand ownership to the store), so each is freed once
the store has moved on and no actor still reads it, and all of them are
lost with the learner: an actor whose background fetch fails that way keeps
the weights it holds until the restarted learner publishes again.

This module imports ray; the single-process mode never imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any, Mapping, Sequence

import ray

from distrl.core import Learner, VariableSource
from distrl.types import Versioned

#: Seconds a blocking weight fetch (the first one, or an evaluator's) waits at most.
DEFAULT_FETCH_TIMEOUT_S = 600.0

#: Shortest time between two ``latest()`` requests of one ``RayVariableSource``. A fast actor reaches
#: ``update_period`` env steps in a few milliseconds (CartPole: 100 steps in about 5 ms), and every
#: request is a remote call that the actor's process and the weight store both pay for: measured with
#: ``bench actor`` (8 envs, 2 CPUs) the store spent 27% of a core answering one actor. Weights change
#: only when the learner publishes, by default every 100 updates at DQN's replay ratio (at least every
#: 25 with the Ape-X config's), which no learner measured here does in under 10 ms (it would take over
#: 2,500 updates/s at 25), so here the floor costs no freshness. A2C with a small ``max_policy_lag``
#: publishes more often (every max_policy_lag // 2 updates), and its actors may then be a request late.
MIN_CHECK_INTERVAL_S = 0.01

#: Seconds one parked ``wait_for_version`` call lasts before the caller checks
#: whether it was interrupted and asks again.
WAIT_SLICE_S = 1.0


class WaitInterrupted(Exception):
    """A wait for a newer weight version ended by ``RayVariableSource.interrupt()``."""


class WeightStore:
    """Holds the latest published weight version; the body of the store actor.

    ``publish(version, [ref])`` replaces the held version only when
    ``version`` is newer, so the version handed out never decreases even if
    publish calls arrive out of order. Once a publisher has ``claim``-ed the
    store, only its publishes count: a restarted learner claims it, so late
    calls of the dead one cannot take a version the new one needs. The reference is passed wrapped in a
    list so that Ray hands the actor the reference itself rather than
    resolving it into the arrays.

    The methods are coroutines, so the actor is an asyncio actor: any number
    of ``wait_for_version`` calls (synchronous on-policy actors waiting for
    the next update) can be parked without holding a thread that a
    ``publish`` needs.
    """

    def __init__(self) -> None:
        self._version = -1
        self._refs: list | None = None
        self._publisher: str | None = None
        self._publishes = 0
        self._published = asyncio.Event()  # Set and replaced on every accepted publish.

    async def claim(self, publisher: str) -> int:
        """Accepts publishes from ``publisher`` only, from now on; returns the newest version."""
        self._publisher = publisher
        return self._version

    @ray.method(enable_task_events=False)  # Called tens of times a second: Ray would record each in its GCS.
    async def publish(self, version: int, refs: list, publisher: str | None = None) -> bool:
        """Stores ``refs`` (a one-element list holding the ObjectRef of the
        params) as ``version``; returns False and keeps the current one when
        ``version`` is not newer or another publisher has claimed the store."""
        if len(refs) != 1:
            raise ValueError(f"WeightStore.publish expects [ref], got a list of {len(refs)}")
        if version <= self._version or (self._publisher is not None and publisher != self._publisher):
            return False
        self._version = int(version)
        self._refs = list(refs)
        self._publishes += 1
        published, self._published = self._published, asyncio.Event()
        published.set()
        return True

    @ray.method(enable_task_events=False)
    async def latest(self) -> tuple[int, list | None]:
        """``(version, [ref])`` of the latest version; ``(-1, None)`` before the first publish."""
        return self._version, self._refs

    @ray.method(enable_task_events=False)
    async def wait_for_version(self, min_version: int, timeout: float) -> tuple[int, list | None]:
        """``latest()`` as soon as its version is at least ``min_version``, or
        after ``timeout`` seconds whatever it is (the caller checks)."""
        deadline = time.monotonic() + timeout
        while self._version < min_version:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._published.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return self._version, self._refs

    async def version(self) -> int:
        """The latest published version (-1 before the first publish)."""
        return self._version

    async def info(self) -> dict[str, int]:
        """``version`` held and accepted ``publishes`` so far."""
        return {"version": self._version, "publishes": self._publishes}


def create_weight_store(name: str | None = None, max_restarts: int = 0) -> "ray.actor.ActorHandle":
    """Starts a ``WeightStore`` actor (no CPU reserved: it only answers tiny calls).

    A restarted store is empty until the learner's next publish; actors keep
    their current weights meanwhile.
    """
    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": max_restarts}
    if max_restarts != 0:
        options["max_task_retries"] = -1  # Every method is safe to repeat.
    if name is not None:
        options["name"] = name
    return ray.remote(WeightStore).options(**options).remote()


class WeightPublisher:
    """Publishes a learner's variables to a ``WeightStore`` every ``publish_period`` steps.

    Call ``after_step()`` once per learner step. Each publish reads
    ``learner.get_variables(names)`` (CPU numpy arrays; the version is the
    learner's step count), makes one ``ray.put`` and sends
    the reference to the store without waiting; at most one publish call is
    outstanding (the next waits for it, with ``timeout`` seconds).

    Args:
      learner: The learner whose variables are published.
      store: Handle of a ``WeightStore`` actor.
      publish_period: Learner steps between publishes, >= 1.
      names: Variable names to publish (what the actors' variable clients ask for).
      timeout: Seconds to wait for the previous publish call at most.
      publisher: The name this publisher claimed the store with (``WeightStore.claim``), if it did.
    """

    def __init__(
        self,
        learner: Learner,
        store: "ray.actor.ActorHandle",
        publish_period: int,
        names: Sequence[str],
        timeout: float = 60.0,
        publisher: str | None = None,
    ) -> None:
        if publish_period < 1:
            raise ValueError(f"publish_period must be >= 1, got {publish_period!r}")
        if not names:
            raise ValueError("WeightPublisher needs at least one variable name")
        self._learner = learner
        self._store = store
        self._publish_period = int(publish_period)
        self._names = list(names)
        self._timeout = float(timeout)
        self._publisher = publisher
        self._steps_since = 0
        self._pending: concurrent.futures.Future | None = None
        self.version = -1
        self.publishes = 0
        self.publish_s = 0.0

    @property
    def publish_period(self) -> int:
        """Learner steps between publishes."""
        return self._publish_period

    def after_step(self) -> None:
        """Counts one learner step; publishes every ``publish_period``-th."""
        self._steps_since += 1
        if self._steps_since >= self._publish_period:
            self.publish()

    def publish(self) -> int:
        """Publishes the learner's current variables now; returns their version."""
        start = time.perf_counter()
        self._steps_since = 0
        versioned = self._learner.get_variables(self._names)
        if versioned.version > self.version:
            self._wait_pending()
            ref = ray.put(dict(versioned.value))
            self._pending = self._store.publish.remote(versioned.version, [ref], self._publisher).future()
            self.version = versioned.version
            self.publishes += 1
        self.publish_s += time.perf_counter() - start
        return self.version

    def _wait_pending(self) -> None:
        """Waits for the previous publish call (usually long finished: a
        ``Future.done()`` check, no round trip to Ray)."""
        pending = self._pending
        if pending is None:
            return
        try:
            pending.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            if pending.done():
                raise
            raise TimeoutError(
                f"weight publisher: the weight store did not acknowledge a publish within "
                f"{self._timeout:g} s; the store is stalled or dead"
            ) from None
        self._pending = None

    def flush(self) -> None:
        """Waits until the last publish reached the store."""
        self._wait_pending()


class RayVariableSource(VariableSource):
    """An actor-side ``VariableSource`` that follows a ``WeightStore`` without blocking.

    ``get_variables`` returns the last version it holds at once. Every
    ``update_period`` calls (the variable client's checks: an actor's env
    steps, or vector steps of a batched actor) it asks the store for ``latest()`` in the
    background; while that request, or the fetch of a newer version's arrays
    it leads to, is in flight, each call only looks whether it has arrived (a
    ``Future.done()``, well under a microsecond) and holds the arrays when
    they have. A new ``latest()`` request is issued only when the previous
    fetch has completed, and at most one every ``MIN_CHECK_INTERVAL_S``
    (10 ms), so each actor has at most one in flight, and a new version
    reaches an actor within about ``update_period`` env steps (or 10 ms,
    whichever is longer) plus two round trips. The held version never
    decreases.

    The very first call blocks (up to ``timeout`` seconds) until a version
    exists, so no actor acts on weights nobody published. With
    ``blocking=True`` every call fetches the store's latest version
    synchronously (the evaluator wants the newest weights, not a recent one).

    Errors of background fetches (e.g. a store that restarted) are counted in
    ``fetch_errors`` and the held version is kept; blocking fetches raise.
    ``latest_requests`` counts the background ``latest()`` requests.
    """

    def __init__(
        self,
        store: "ray.actor.ActorHandle",
        update_period: int = 1,
        timeout: float = DEFAULT_FETCH_TIMEOUT_S,
        blocking: bool = False,
    ) -> None:
        if update_period < 1:
            raise ValueError(f"update_period must be >= 1, got {update_period!r}")
        self._store = store
        self._update_period = int(update_period)
        self._timeout = float(timeout)
        self._blocking = blocking
        self._calls = 0
        self._last_request = -float("inf")
        self._held: Versioned[Mapping[str, Any]] | None = None
        self._latest_future = None
        self._params_future = None
        self._params_version = -1
        self._interrupted = threading.Event()
        self.fetch_errors = 0
        self.versions_loaded = 0
        self.latest_requests = 0

    @property
    def version(self) -> int:
        """Version held (-1 before the first fetch)."""
        return -1 if self._held is None else self._held.version

    @property
    def _fetching(self) -> bool:
        """True while a ``latest()`` request or a fetch of arrays is in flight."""
        return self._latest_future is not None or self._params_future is not None

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        if self._held is None or self._blocking:
            self._fetch_blocking()
        else:
            self._calls += 1
            if self._calls >= self._update_period or self._fetching:
                self._advance()
        held = self._held
        missing = [name for name in names if name not in held.value]
        if missing:
            raise KeyError(f"published weights have no variables {missing}; they have {sorted(held.value)}")
        return Versioned(held.version, {name: held.value[name] for name in names})

    def get_newer_variables(self, names: Sequence[str], than_version: int) -> Versioned[Mapping[str, Any]]:
        """Waits (``timeout`` seconds at most) until the store holds a version
        newer than ``than_version``, loads it and returns it; the store parks
        each call until a publish (slices of ``WAIT_SLICE_S``), so waiting
        costs no polling, and ``interrupt()`` ends the wait within a slice
        with ``WaitInterrupted``."""
        if self.version <= than_version:
            deadline = time.monotonic() + self._timeout
            version, refs = -1, None
            try:
                while version <= than_version:
                    if self._interrupted.is_set():
                        raise WaitInterrupted(f"stopped while waiting for a version newer than {than_version}")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ray.exceptions.GetTimeoutError()
                    wait_s = min(WAIT_SLICE_S, remaining)
                    version, refs = ray.get(
                        self._store.wait_for_version.remote(than_version + 1, wait_s), timeout=wait_s + 30.0
                    )
                if version > self.version:
                    value = ray.get(refs[0], timeout=max(deadline - time.monotonic(), 1.0))
                    self._hold(version, value)
            except ray.exceptions.GetTimeoutError:
                raise TimeoutError(
                    f"variable source: no weight version newer than {than_version} was published within "
                    f"{self._timeout:g} s; is the learner running and receiving data?"
                ) from None
            self._latest_future = self._params_future = None
            self._calls = 0
        return self.get_variables(names)

    def interrupt(self) -> None:
        """Ends a ``get_newer_variables`` wait (now or later) with ``WaitInterrupted``: an actor is stopping."""
        self._interrupted.set()

    def _fetch_blocking(self) -> None:
        """Waits until the store holds a version (newer than ours when we hold
        one already, else any) and loads it."""
        deadline = time.monotonic() + self._timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ray.exceptions.GetTimeoutError()
                version, refs = ray.get(self._store.latest.remote(), timeout=remaining)
                if version >= 0:
                    break
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))
            if version > self.version:
                value = ray.get(refs[0], timeout=max(deadline - time.monotonic(), 1e-3))
                self._hold(version, value)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(
                f"variable source: the weight store published no version (or its weights did not "
                f"arrive) within {self._timeout:g} s; is the learner running?"
            ) from None

    def _advance(self) -> None:
        """One non-blocking look at the background fetch: takes what has
        arrived, and issues a new ``latest()`` request when none is in flight."""
        try:
            if self._latest_future is not None and self._latest_future.done():
                future, self._latest_future = self._latest_future, None
                version, refs = future.result()
                if version > self.version and self._params_future is None:
                    self._params_version = version
                    self._params_future = refs[0].future()
            if self._params_future is not None and self._params_future.done():
                future, self._params_future = self._params_future, None
                self._hold(self._params_version, future.result())
            if not self._fetching and self._calls >= self._update_period:
                now = time.monotonic()
                if now - self._last_request >= MIN_CHECK_INTERVAL_S:
                    self._calls = 0
                    self._last_request = now
                    self.latest_requests += 1
                    self._latest_future = self._store.latest.remote().future()
        except Exception:  # noqa: BLE001 - a failed background fetch keeps the held weights.
            self.fetch_errors += 1
            self._latest_future = None
            self._params_future = None

    def _hold(self, version: int, value: Mapping[str, Any]) -> None:
        if self._held is None or version > self._held.version:
            self._held = Versioned(int(version), value)
            self.versions_loaded += 1
