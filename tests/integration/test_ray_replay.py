"""The Ray replay server and client: concurrency, rate limiting, backpressure, timeouts."""

from __future__ import annotations

import functools
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from distrl.replay.rate_limiters import SampleToInsertRatio  # noqa: E402
from distrl.replay.samplers import UniformSampler  # noqa: E402
from distrl.replay.server import RayReplayClient, create_replay_server  # noqa: E402
from distrl.replay.table import Table  # noqa: E402

# Test modules are not importable on Ray workers: ship this one's functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SPI = 2.0
MIN_SIZE = 50
ERROR_BUFFER = 40.0
MAX_SIZE = 300
WRITERS = 4
BATCHES_PER_WRITER = 50
INSERT_BATCH = 10
SAMPLE_BATCH = 8
K = 2


def _make_tables(spi: float = SPI, min_size: int = MIN_SIZE, error_buffer: float = ERROR_BUFFER):
    return [Table("t", MAX_SIZE, UniformSampler(seed=0), SampleToInsertRatio(spi, min_size, error_buffer))]


@ray.remote(num_cpus=0)
def _writer(server, index: int, num_batches: int, k: int) -> dict:
    client = RayReplayClient(server, "t", max_in_flight_inserts=k, timeout=60)
    for b in range(num_batches):
        ids = np.arange(INSERT_BATCH, dtype=np.int64) + (index * 1_000_000 + b * INSERT_BATCH)
        client.insert({"id": ids, "x": np.ones((INSERT_BATCH, 3), np.float32)})
        assert client.in_flight_inserts <= k
    client.flush()
    return client.stats()


@ray.remote(num_cpus=0)
def _sampler(server, num_batches: int) -> int:
    client = RayReplayClient(server, "t", timeout=60)
    sampled = 0
    for _ in range(num_batches):
        batch = client.sample(SAMPLE_BATCH)
        assert batch.data["x"].shape == (SAMPLE_BATCH, 3)
        sampled += len(batch.keys)
    return sampled


def test_concurrent_writers_and_sampler_keep_items_and_ratio(ray_session):
    server = create_replay_server(functools.partial(_make_tables), insert_concurrency=WRITERS * K)
    limiter = _make_tables()[0].rate_limiter
    total_items = WRITERS * BATCHES_PER_WRITER * INSERT_BATCH
    # Sample as much as the limiter allows once every item is in (the final diff stays >= min_diff).
    sample_batches = int((total_items * SPI - limiter.min_diff) // SAMPLE_BATCH)
    writers = [_writer.remote(server, i, BATCHES_PER_WRITER, K) for i in range(WRITERS)]
    sampler = _sampler.remote(server, sample_batches)
    upper = limiter.max_diff + (INSERT_BATCH - 1) * SPI
    lower = limiter.min_diff - (SAMPLE_BATCH - 1)
    pending = writers + [sampler]
    polls = 0
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.05)
        info = ray.get(server.info.remote("t"))
        diff = info["inserts"] * SPI - info["samples"]
        assert diff <= upper, info
        if info["samples"] > 0:
            assert diff >= lower, info
        polls += 1
    stats = ray.get(writers)
    assert ray.get(sampler) == sample_batches * SAMPLE_BATCH
    info = ray.get(server.info.remote("t"))
    assert polls > 3
    assert info["inserts"] == total_items == sum(s["items_inserted"] for s in stats)
    assert info["size"] + info["evictions"] == info["inserts"]
    assert info["size"] == MAX_SIZE
    assert info["samples"] == sample_batches * SAMPLE_BATCH
    # Observed samples per insert: spi minus the window's offset, spread over all inserts.
    assert lower <= total_items * (SPI - info["samples_per_insert"]) <= upper
    # Backpressure: never more than k inserts outstanding per writer, and the bound was reached.
    assert all(s["max_in_flight_seen"] <= K for s in stats)
    assert max(s["max_in_flight_seen"] for s in stats) == K
    ray.kill(server)


def test_backpressure_waits_on_oldest_and_times_out_with_clear_error(ray_session):
    """With no sampler the limiter stops admitting inserts: the client keeps at
    most k outstanding, then waits on the oldest, which fails server-side with
    a TimeoutError that names the table and the limiter state."""
    server = create_replay_server(functools.partial(_make_tables, 1.0, 10, 5.0))
    client = RayReplayClient(server, "t", max_in_flight_inserts=K, timeout=1.0)
    batch = {"id": np.zeros(4, np.int64), "x": np.ones((4, 3), np.float32)}
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="table 't'.*may be inserted"):
        for _ in range(10):
            client.insert(batch)
            assert client.in_flight_inserts <= K
    assert client.stats()["max_in_flight_seen"] == K
    assert client.stats()["insert_wait_s"] > 0.5
    assert time.perf_counter() - start < 20
    ray.kill(server)


def test_update_priorities_info_and_state_round_trip(ray_session):
    server = create_replay_server(functools.partial(_make_tables, 1.0, 10, 50.0))
    client = RayReplayClient(server, "t", max_in_flight_inserts=3, timeout=5.0)
    for i in range(3):
        client.insert({"id": np.arange(10, dtype=np.int64) + 10 * i, "x": np.ones((10, 3), np.float32)})
    client.flush()
    assert client.can_sample(4)
    sample = client.sample(4)
    client.update_priorities(sample.keys, np.ones(4))
    client.flush()
    info = client.info()
    assert (info["size"], info["inserts"], info["samples"]) == (30, 30, 4)
    state = ray.get(server.get_state.remote())
    other = create_replay_server(functools.partial(_make_tables, 1.0, 10, 50.0))
    ray.get(other.set_state.remote(state))
    other_info = ray.get(other.info.remote("t"))
    assert (other_info["size"], other_info["inserts"], other_info["samples"]) == (30, 30, 4)
    with pytest.raises(KeyError, match="no table 'nope'"):
        ray.get(server.info.remote("nope"))
    ray.kill(server)
    ray.kill(other)


def test_prefetching_iterator_over_ray_client(ray_session):
    from distrl.experiments.prefetch import PrefetchingIterator
    import torch

    server = create_replay_server(functools.partial(_make_tables, 1.0, 10, 1000.0))
    client = RayReplayClient(server, "t", timeout=5.0)
    client.insert({"id": np.arange(40, dtype=np.int64), "x": np.ones((40, 3), np.float32)})
    client.flush()
    iterator = PrefetchingIterator(client, batch_size=4, num_in_flight=3)
    batches = [next(iterator) for _ in range(5)]
    assert all(isinstance(b.data["x"], torch.Tensor) and b.data["x"].shape == (4, 3) for b in batches)
    assert all(isinstance(b.keys, np.ndarray) for b in batches)
    # Five consumed plus three still in flight.
    time.sleep(0.5)
    assert ray.get(server.info.remote("t"))["samples"] == 4 * 8
    iterator.close()
    ray.kill(server)
