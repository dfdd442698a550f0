"""PrefetchingIterator: requests kept in flight, conversion to torch, wait accounting, stopping."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from distrl.replay.client import LocalReplayClient, ReplayClient
from distrl.replay.prefetch import PrefetchingIterator, PrefetchStopped
from distrl.replay.rate_limiters import MinSize
from distrl.replay.samplers import UniformSampler
from distrl.replay.table import Table
from distrl.types import SampleBatch


class _SlowClient(ReplayClient):
    """Each sample takes ``delay`` seconds; counts calls running at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.calls = 0
        self._lock = threading.Lock()

    def sample(self, batch_size: int) -> SampleBatch:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
        ones = np.ones(batch_size)
        return SampleBatch(np.arange(batch_size), {"x": np.zeros((batch_size, 2), np.float32)}, ones, ones)

    def insert(self, items, priorities=None):
        raise NotImplementedError

    def can_sample(self, batch_size):
        return True

    def update_priorities(self, keys, priorities):
        raise NotImplementedError

    def info(self):
        return {}


def test_local_client_batches_become_tensors_with_numpy_keys():
    table = Table("t", 100, UniformSampler(seed=0), MinSize(1))
    client = LocalReplayClient(table)
    client.insert({"obs": np.arange(20, dtype=np.float32).reshape(10, 2), "a": np.arange(10)})
    iterator = PrefetchingIterator(client, batch_size=4, num_in_flight=2)
    batch = next(iterator)
    assert isinstance(batch.data["obs"], torch.Tensor) and batch.data["obs"].shape == (4, 2)
    assert batch.data["a"].dtype == torch.int64
    assert isinstance(batch.keys, np.ndarray) and isinstance(batch.weights, np.ndarray)
    assert iterator.stats()["batches"] == 1
    iterator.close()


def test_keeps_m_requests_in_flight_and_measures_wait():
    delay = 0.1
    client = _SlowClient(delay)
    iterator = PrefetchingIterator(client, batch_size=2, num_in_flight=3)
    start = time.perf_counter()
    for _ in range(9):
        next(iterator)
    elapsed = time.perf_counter() - start
    iterator.close()
    assert client.max_running == 3
    # Three samples overlap: about 9 * delay / 3, well under the serial 9 * delay.
    assert elapsed < 6 * delay
    stats = iterator.stats()
    assert 0.5 * elapsed < stats["wait_s"] <= elapsed + 1e-3
    assert 0.5 < stats["wait_fraction"] <= 1.0


def test_stop_event_interrupts_a_wait_and_timeout_names_the_cause():
    stop = threading.Event()
    iterator = PrefetchingIterator(_SlowClient(1.0), batch_size=2, num_in_flight=1, stop_event=stop, poll_s=0.02)
    threading.Timer(0.1, stop.set).start()
    start = time.perf_counter()
    with pytest.raises(PrefetchStopped):
        next(iterator)
    assert time.perf_counter() - start < 0.6
    iterator.close()
    slow = PrefetchingIterator(_SlowClient(1.0), batch_size=2, num_in_flight=1, timeout=0.1)
    with pytest.raises(TimeoutError, match="no batch of 2 within 0.1 s"):
        next(slow)
    slow.close()


def test_batches_per_call_splits_one_sample_into_consecutive_batches():
    table = Table("t", 100, UniformSampler(seed=0), MinSize(1))
    client = LocalReplayClient(table)
    client.insert({"x": np.arange(50, dtype=np.float32)})
    iterator = PrefetchingIterator(client, batch_size=4, num_in_flight=1, batches_per_call=3)
    batches = [next(iterator) for _ in range(3)]
    assert all(b.data["x"].shape == (4,) and b.keys.shape == (4,) and b.weights.shape == (4,) for b in batches)
    assert all(torch.equal(b.data["x"], torch.from_numpy(b.keys.astype(np.float32))) for b in batches)
    iterator.close()
    # One call of 12 for the three batches, plus the one requested ahead.
    assert table.info()["samples"] in (12, 24)


class _FailingClient(_SlowClient):
    def sample(self, batch_size: int) -> SampleBatch:
        raise TimeoutError("table 't': timed out waiting until 2 item(s) may be sampled")


def test_a_sample_that_times_out_server_side_raises_at_once():
    iterator = PrefetchingIterator(_FailingClient(0.0), batch_size=2, num_in_flight=2, timeout=30)
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="may be sampled"):
        next(iterator)
    assert time.perf_counter() - start < 5
    iterator.close()


def test_close_from_another_thread_ends_a_waiting_next_without_spinning():
    """close() cleared the calls a waiting next() polled, which then spun a core until its timeout."""
    iterator = PrefetchingIterator(_SlowClient(30.0), batch_size=2, num_in_flight=1, timeout=60, poll_s=0.05)
    outcome: list = []

    def consume() -> None:
        start_cpu = time.thread_time()
        try:
            next(iterator)
        except BaseException as error:  # noqa: BLE001 - what ended the wait is the result.
            outcome.append((error, time.thread_time() - start_cpu))

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.2)
    iterator.close()
    thread.join(5)
    assert not thread.is_alive(), "next() still waits after close()"
    (error, cpu_s), = outcome
    assert isinstance(error, PrefetchStopped)
    assert cpu_s < 0.5  # It slept between polls instead of spinning.


class _ServerRestartClient(_SlowClient):
    """The first ``failures`` sample calls fail as if the server died (a retryable error)."""

    class ServerDied(Exception):
        pass

    retryable_errors = (ServerDied,)

    def __init__(self, failures: int) -> None:
        super().__init__(0.0)
        self.failures = failures

    def sample(self, batch_size: int) -> SampleBatch:
        if self.failures > 0:
            self.failures -= 1
            raise self.ServerDied("the replay server died")
        return super().sample(batch_size)


def test_samples_lost_with_a_dead_server_are_asked_again():
    client = _ServerRestartClient(failures=3)
    iterator = PrefetchingIterator(client, batch_size=2, num_in_flight=2, timeout=10, poll_s=0.01)
    batch = next(iterator)
    assert batch.data["x"].shape == (2, 2)
    assert iterator.stats()["retried_calls"] == 3
    iterator.close()
