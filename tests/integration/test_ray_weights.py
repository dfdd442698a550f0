"""WeightStore, WeightPublisher and RayVariableSource: versions only increase, pulls never block."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from distrl.core import Learner  # noqa: E402
from distrl.types import Versioned  # noqa: E402
from distrl.variables.weight_store import (  # noqa: E402
    RayVariableSource,
    WeightPublisher,
    create_weight_store,
)

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _CountingLearner(Learner):
    """Its only parameter is filled with the step count, so a version's weights are checkable."""

    def __init__(self) -> None:
        self.steps = 0

    def step(self):
        self.steps += 1
        return {}

    def get_variables(self, names):
        return Versioned(self.steps, {"net": {"w": np.full(3, float(self.steps), np.float32)}})

    def save(self):
        return {}

    def restore(self, state):
        pass


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_store_keeps_only_newer_versions(ray_session):
    store = create_weight_store()
    first, second = ray.put({"net": 1}), ray.put({"net": 2})
    assert ray.get(store.publish.remote(5, [second]))
    assert not ray.get(store.publish.remote(3, [first]))
    version, refs = ray.get(store.latest.remote())
    assert version == 5 and ray.get(refs[0]) == {"net": 2}
    ray.kill(store)


def test_claimed_store_accepts_only_its_publisher(ray_session):
    """After a restarted learner claims the store, late publishes of the one
    it replaced are refused even when their version is newer."""
    store = create_weight_store()
    assert ray.get(store.publish.remote(1, [ray.put({"net": 1})], "first"))
    assert ray.get(store.claim.remote("second")) == 1
    assert not ray.get(store.publish.remote(7, [ray.put({"net": 7})], "first"))
    assert ray.get(store.publish.remote(2, [ray.put({"net": 2})], "second"))
    version, refs = ray.get(store.latest.remote())
    assert version == 2 and ray.get(refs[0]) == {"net": 2}
    ray.kill(store)


def test_source_pulls_in_background_and_versions_only_increase(ray_session):
    store = create_weight_store()
    learner = _CountingLearner()
    publisher = WeightPublisher(learner, store, publish_period=2, names=["net"])
    publisher.publish()
    source = RayVariableSource(store, update_period=1)
    first = source.get_variables(["net"])  # Blocks once: version 0 exists.
    assert first.version == 0
    seen = [0]
    for _ in range(20):
        learner.step()
        publisher.after_step()
        publisher.flush()
        start = time.perf_counter()
        versioned = source.get_variables(["net"])
        assert time.perf_counter() - start < 0.05  # Never waits on the store.
        assert np.all(versioned.value["net"]["w"] == versioned.version)
        seen.append(versioned.version)
    _wait_until(lambda: source.get_variables(["net"]).version == 20)
    seen.append(source.version)
    assert seen == sorted(seen) and seen[-1] == 20
    assert all(v % 2 == 0 for v in seen)  # Only published versions (every 2 steps) are seen.
    assert publisher.publishes == 11 and source.fetch_errors == 0
    with pytest.raises(KeyError, match="no variables"):
        source.get_variables(["other"])
    ray.kill(store)


@ray.remote(num_cpus=0)
def _lost_weights() -> dict:
    raise RuntimeError("these weights were lost")


def test_a_failed_background_fetch_keeps_the_held_weights(ray_session):
    """A version whose arrays cannot be fetched (e.g. lost with the learner
    process that put them) is counted as a fetch error; the actor keeps acting
    with the weights it holds and takes the next version that does arrive."""
    store = create_weight_store()
    learner = _CountingLearner()
    learner.steps = 1
    publisher = WeightPublisher(learner, store, publish_period=1, names=["net"])
    publisher.publish()
    publisher.flush()
    source = RayVariableSource(store, update_period=1)
    assert source.get_variables(["net"]).version == 1
    ray.get(store.publish.remote(2, [_lost_weights.remote()]))
    _wait_until(lambda: source.get_variables(["net"]) is not None and source.fetch_errors >= 1)
    versioned = source.get_variables(["net"])
    assert versioned.version == 1 and np.all(versioned.value["net"]["w"] == 1)
    learner.steps = 3
    publisher.publish()
    _wait_until(lambda: source.get_variables(["net"]).version == 3)
    ray.kill(store)


def test_a_fast_actor_asks_the_store_at_most_every_min_check_interval(ray_session):
    """An actor stepping faster than the floor (here: every call is a check) asks for the latest
    version about once per MIN_CHECK_INTERVAL_S, not once per update_period calls."""
    import time

    from distrl.variables.weight_store import MIN_CHECK_INTERVAL_S

    store = create_weight_store()
    learner = _CountingLearner()
    publisher = WeightPublisher(learner, store, publish_period=1, names=["net"])
    publisher.publish()
    publisher.flush()
    source = RayVariableSource(store, update_period=1)
    source.get_variables(["net"])  # The first, blocking fetch.
    calls, start = 0, time.monotonic()
    while time.monotonic() - start < 20 * MIN_CHECK_INTERVAL_S:
        source.get_variables(["net"])
        calls += 1
    elapsed = time.monotonic() - start
    assert calls > 100  # Every one of them reached update_period...
    assert 1 <= source.latest_requests <= elapsed / MIN_CHECK_INTERVAL_S + 1  # ...but not the store.
    ray.kill(store)


def test_first_fetch_times_out_with_clear_error(ray_session):
    store = create_weight_store()
    with pytest.raises(TimeoutError, match="published no version"):
        RayVariableSource(store, timeout=0.3).get_variables(["net"])
    ray.kill(store)


def test_get_newer_variables_waits_for_a_publish_and_can_be_interrupted(ray_session):
    """A synchronous actor's wait: parked on the store until the next publish;
    interrupt() (an actor stopping) ends it instead of its long timeout."""
    import threading

    from distrl.variables.weight_store import WaitInterrupted

    store = create_weight_store()
    learner = _CountingLearner()
    publisher = WeightPublisher(learner, store, publish_period=1, names=["net"])
    publisher.publish()
    source = RayVariableSource(store, update_period=1000, timeout=120.0)
    assert source.get_variables(["net"]).version == 0
    results: list = []
    waiter = threading.Thread(target=lambda: results.append(source.get_newer_variables(["net"], 0)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and not results  # Nothing newer than 0 yet.
    learner.step()
    publisher.after_step()
    waiter.join(timeout=30)
    assert results[0].version == 1 and results[0].value["net"]["w"][0] == 1.0

    errors: list = []

    def wait_forever() -> None:
        try:
            source.get_newer_variables(["net"], 1)
        except WaitInterrupted as error:
            errors.append(error)

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    time.sleep(0.3)
    source.interrupt()
    waiter.join(timeout=30)  # Within a wait slice (1 s), far below the 120 s timeout.
    assert not waiter.is_alive() and len(errors) == 1
    ray.kill(store)
