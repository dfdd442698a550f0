"""The Ray replay server and client: concurrency, rate limiting, backpressure, timeouts."""

from __future__ import annotations

import concurrent.futures
import functools
import sys
import time
import types

import numpy as np
import pytest
import tree

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from distrl.replay.rate_limiters import MinSize, SampleToInsertRatio  # noqa: E402
from distrl.replay.samplers import UniformSampler  # noqa: E402
from distrl.replay.ray_client import RayReplayClient  # noqa: E402
from distrl.replay.server import ReplayServer, create_replay_server  # noqa: E402
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
    import torch

    from distrl.replay.prefetch import PrefetchingIterator

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


# Insert coalescing: while k calls are outstanding, small batches merge into bigger calls.

COALESCE = 64  # The clients' max_coalesced_items below.
SMALL_BATCH = 3


def _wide_ratio_tables():
    """Inserts stop about 210 items in until someone samples; the window
    (error_buffer 200, spi 1) lets a merged call hold up to 100 items."""
    return [Table("t", 1000, UniformSampler(seed=0), SampleToInsertRatio(1.0, 10, 200.0))]


def _never_waiting_tables():
    return [Table("t", 1000, UniformSampler(seed=0), MinSize(1))]


def _queue_tables():
    return [Table.queue("t", 12)]


@ray.remote(num_cpus=0)
def _small_batch_writer(server, num_batches: int, batch: int, k: int, max_coalesced_items: int,
                        pause_s: float = 0.0) -> dict:
    """Inserts batches with consecutive ids (and x = the batch index), checking
    the in-flight and buffer bounds after every insert."""
    client = RayReplayClient(server, "t", max_in_flight_inserts=k, timeout=60,
                             max_coalesced_items=max_coalesced_items)
    for b in range(num_batches):
        client.insert({"id": np.arange(batch, dtype=np.int64) + b * batch, "x": np.full((batch, 3), b, np.float32)})
        assert client.in_flight_inserts <= k
        assert client.buffered_items < max(max_coalesced_items, 1)
        if pause_s:
            time.sleep(pause_s)
    client.flush()
    assert client.buffered_items == 0 and client.in_flight_inserts == 0
    return client.stats()


def _stored(server, table: str = "t") -> dict:
    """The table's data in insertion order (the tables here never evict)."""
    state = ray.get(server.get_state.remote())[table]["storage"]
    return tree.unflatten_as(state["structure"], state["leaves"])


def test_coalescing_limit_follows_the_table():
    def tables():
        return [
            Table("plain", 300, UniformSampler(seed=0), MinSize(1)),
            Table("ratio", 300, UniformSampler(seed=0), SampleToInsertRatio(2.0, 50, 40.0)),
            Table("narrow", 300, UniformSampler(seed=0), SampleToInsertRatio(1.0, 10, 5.0)),
            Table.queue("queue", 12),
        ]

    server = ReplayServer(tables)  # The plain class: no actor needed.
    assert server.coalescing_limit("plain") == 300  # Inserts never wait: up to max_size.
    assert server.coalescing_limit("ratio") == 10  # error_buffer / (2 * spi).
    assert server.coalescing_limit("narrow") == 2
    assert server.coalescing_limit("queue") == 0  # Never merge into a queue.
    with pytest.raises(ValueError, match="max_coalesced_items"):
        RayReplayClient(None, "t", max_coalesced_items=-1)


@pytest.mark.parametrize("k", [1, K])
def test_inserts_merge_while_the_server_is_behind_and_arrive_once_in_order(ray_session, k):
    """Merged calls carry every item once, in order. With k > 1 the server runs
    a client's outstanding calls on concurrent threads, so two calls waiting
    on the limiter together may land in either order (with or without
    merging): only k = 1 checks the order across calls."""
    server = create_replay_server(_wide_ratio_tables, insert_concurrency=4)
    assert ray.get(server.coalescing_limit.remote("t")) == 100
    num_batches = 150
    total = num_batches * SMALL_BATCH
    writer = _small_batch_writer.remote(server, num_batches, SMALL_BATCH, k, COALESCE)
    # Let the writer run into the limiter (its k calls then wait on the server
    # and its batches pile up in the client), then release it by sampling.
    deadline = time.monotonic() + 60
    while ray.get(server.info.remote("t"))["inserts"] < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert ray.get(server.info.remote("t"))["inserts"] < total
    assert not ray.wait([writer], timeout=0)[0]
    sampler = RayReplayClient(server, "t", timeout=60)
    while not ray.wait([writer], timeout=0)[0]:
        if sampler.can_sample(50):
            sampler.sample(50)
        else:
            time.sleep(0.02)
    stats = ray.get(writer)
    assert stats["coalescing_limit"] == COALESCE  # min(max_coalesced_items, the server's 100).
    assert stats["coalesced_calls"] > 0 and stats["coalesced_batches"] > stats["coalesced_calls"]
    assert stats["insert_calls"] < num_batches
    assert stats["insert_calls"] == num_batches - stats["coalesced_batches"] + stats["coalesced_calls"]
    assert SMALL_BATCH < stats["max_call_items"] <= COALESCE
    assert 0 < stats["max_buffered_seen"] < COALESCE
    assert stats["max_in_flight_seen"] == k
    assert stats["insert_wait_s"] > 0
    assert stats["items_inserted"] == total and stats["items_buffered"] == 0
    assert ray.get(server.info.remote("t"))["inserts"] == total
    data = _stored(server)
    np.testing.assert_array_equal(np.sort(data["id"]), np.arange(total))  # Every item exactly once,
    np.testing.assert_array_equal(data["x"][:, 0], data["id"] // SMALL_BATCH)  # with its own data.
    if k == 1:
        np.testing.assert_array_equal(data["id"], np.arange(total))  # In order.
    ray.kill(server)


def test_inserts_are_not_merged_while_the_server_keeps_up(ray_session):
    server = create_replay_server(_never_waiting_tables)
    ray.get(server.info.remote("t"))  # The actor is up: its start-up would hold the first calls.
    num_batches = 15
    stats = ray.get(_small_batch_writer.remote(server, num_batches, SMALL_BATCH, K, COALESCE, pause_s=0.1))
    assert stats["coalesced_calls"] == 0 and stats["max_buffered_seen"] == 0
    assert stats["insert_calls"] == num_batches and stats["max_call_items"] == SMALL_BATCH
    np.testing.assert_array_equal(_stored(server)["id"], np.arange(num_batches * SMALL_BATCH))
    ray.kill(server)


def test_queue_tables_are_never_merged_into(ray_session):
    """A2C's queue holds batch + one round; a call of two rounds could deadlock
    it (or never fit), so the client submits every round alone and waits."""
    server = create_replay_server(_queue_tables)
    assert ray.get(server.coalescing_limit.remote("t")) == 0
    num_rounds, round_items = 10, 4
    writer = _small_batch_writer.remote(server, num_rounds, round_items, 1, COALESCE)
    sampler = RayReplayClient(server, "t", timeout=60)
    ids = np.concatenate([sampler.sample(8).data["id"] for _ in range(num_rounds * round_items // 8)])
    stats = ray.get(writer)
    np.testing.assert_array_equal(ids, np.arange(num_rounds * round_items))
    assert stats["coalescing_limit"] == 0 and stats["coalesced_calls"] == 0
    assert stats["insert_calls"] == num_rounds and stats["max_call_items"] == round_items
    assert stats["insert_wait_s"] > 0
    ray.kill(server)


def test_merged_inserts_still_raise_the_servers_timeout(ray_session):
    """No sampler: the limiter stops admitting inserts, the client merges up
    to its limit, then waits on the oldest call, which fails server-side."""
    server = create_replay_server(functools.partial(_make_tables, 1.0, 10, 100.0))  # Merge limit 50.
    client = RayReplayClient(server, "t", max_in_flight_inserts=K, timeout=1.0)
    batch = {"id": np.zeros(4, np.int64), "x": np.ones((4, 3), np.float32)}
    with pytest.raises(TimeoutError, match="table 't'.*may be inserted"):
        for _ in range(100):
            client.insert(batch)
            assert client.in_flight_inserts <= K and client.buffered_items < 50
    stats = client.stats()
    assert stats["coalescing_limit"] == 50 and stats["items_buffered"] > 0
    assert stats["max_in_flight_seen"] == K and stats["insert_wait_s"] > 0.5
    ray.kill(server)


class _FakeMethod:
    def __init__(self, fn):
        self.remote = fn


class _ScriptedServer:
    """Stands in for a server handle: each insert call is recorded with a
    Future that finishes only when the test says so."""

    def __init__(self, limit: int):
        self.calls: list = []  # (ids, priorities, future) per insert call, in submission order.
        self.finish_at_once = False
        self.insert = _FakeMethod(self._insert)
        self.coalescing_limit = _FakeMethod(lambda table: ray.put(limit))

    def _insert(self, table, items, priorities, timeout):
        future = concurrent.futures.Future()
        self.calls.append((items["id"].copy(), None if priorities is None else np.array(priorities), future))
        if self.finish_at_once:
            future.set_result(len(items["id"]))
        return types.SimpleNamespace(future=lambda: future)

    def finish(self, count: int | None = None) -> None:
        """Finishes the oldest ``count`` unfinished calls (all when None)."""
        open_calls = [future for _, _, future in self.calls if not future.done()]
        for future in open_calls[:count]:
            future.set_result(len(open_calls))

    def sizes(self) -> list[int]:
        return [len(ids) for ids, _, _ in self.calls]


def _ids(start: int, n: int = 2) -> dict:
    return {"id": np.arange(start, start + n, dtype=np.int64)}


def test_client_holds_merged_batches_until_full_or_caught_up(ray_session):
    """The client's state machine step by step (k = 2, merge limit 8, batches of 2)."""
    server = _ScriptedServer(limit=100)
    client = RayReplayClient(server, "t", max_in_flight_inserts=2, max_coalesced_items=8)
    client.insert(_ids(0))
    client.insert(_ids(2))
    assert server.sizes() == [2, 2]  # The server keeps up: each batch at once.
    client.insert(_ids(4))  # k outstanding: behind, the batch is held.
    assert server.sizes() == [2, 2] and client.buffered_items == 2
    assert client.stats()["coalescing_limit"] == 8  # min(max_coalesced_items, the server's 100).
    server.finish(1)
    client.insert(_ids(6))  # A slot is free but a call is still outstanding: held for a bigger call.
    client.insert(_ids(8))
    assert server.sizes() == [2, 2] and client.buffered_items == 6
    client.insert(_ids(10))  # The buffer reaches the limit: one call of 8 items.
    assert server.sizes() == [2, 2, 8] and client.buffered_items == 0
    client.insert(_ids(12))  # Still behind (2 outstanding).
    assert server.sizes() == [2, 2, 8]
    server.finish()
    client.insert(_ids(14))  # Every call finished: caught up, the buffer and the batch go as one call.
    assert server.sizes() == [2, 2, 8, 4]
    client.insert(_ids(16))  # Not behind any more: at once again.
    assert server.sizes() == [2, 2, 8, 4, 2]
    # Priorities: a batch of the other kind sends the buffer first, alone.
    client.insert(_ids(18))  # k outstanding: behind, held.
    server.finish(1)
    client.insert(_ids(20), priorities=np.ones(2))  # The buffer goes alone; the new batch is held.
    assert server.sizes() == [2, 2, 8, 4, 2, 2] and client.buffered_items == 2
    server.finish()
    server.finish_at_once = True
    client.flush()  # Sends the buffer and waits for everything.
    server.finish_at_once = False
    assert server.sizes() == [2, 2, 8, 4, 2, 2, 2] and client.buffered_items == 0
    assert server.calls[-2][1] is None and server.calls[-1][1].tolist() == [1.0, 1.0]
    # Errors of finished calls are raised by the next insert, which does not take its batch.
    client.insert(_ids(22))
    server.calls[-1][2].set_exception(RuntimeError("insert failed"))
    with pytest.raises(RuntimeError, match="insert failed"):
        client.insert(_ids(24))
    assert client.stats()["items_inserted"] == 24
    client.insert(_ids(24))
    server.finish()
    client.flush()
    np.testing.assert_array_equal(np.concatenate([ids for ids, _, _ in server.calls]), np.arange(26))
    stats = client.stats()
    assert stats["items_inserted"] == 26 and stats["insert_calls"] == len(server.calls) == 9
    assert (stats["coalesced_calls"], stats["coalesced_batches"]) == (2, 6)
    assert stats["max_call_items"] == 8 and stats["max_buffered_seen"] == 6 and stats["max_in_flight_seen"] == 2


def test_client_holds_batches_for_min_call_interval_and_sends_them_with_the_next_call(ray_session, monkeypatch):
    """With min_call_interval_s = T, a batch ready less than T after the last call waits for the
    first insert T after it (or send_held / flush) and goes out merged with it, in order."""
    from distrl.replay import ray_client

    now = [100.0]
    monkeypatch.setattr(ray_client.time, "monotonic", lambda: now[0])
    server = _ScriptedServer(limit=100)
    server.finish_at_once = True  # The server keeps up: only the interval holds batches.
    client = RayReplayClient(server, "t", max_in_flight_inserts=2, max_coalesced_items=8,
                             min_call_interval_s=0.02)
    client.insert(_ids(0))  # No call yet: at once.
    now[0] += 0.01
    client.insert(_ids(2))
    client.insert(_ids(4))
    assert server.sizes() == [2] and client.buffered_items == 4
    now[0] += 0.01  # T after the last call.
    client.insert(_ids(6))  # The held batches and this one as one call.
    assert server.sizes() == [2, 6] and client.buffered_items == 0
    for start in (8, 10, 12):
        client.insert(_ids(start))
    assert client.buffered_items == 6
    client.insert(_ids(14))  # The merge limit (8) still caps a held call.
    assert server.sizes() == [2, 6, 8] and client.buffered_items == 0
    client.insert(_ids(16))
    client.send_held()  # An actor about to idle sends what is held, without waiting for T.
    assert server.sizes() == [2, 6, 8, 2]
    client.insert(_ids(18))
    client.flush()
    assert server.sizes() == [2, 6, 8, 2, 2]
    np.testing.assert_array_equal(np.concatenate([ids for ids, _, _ in server.calls]), np.arange(20))
    with pytest.raises(ValueError, match="min_call_interval_s"):
        RayReplayClient(server, "t", min_call_interval_s=-1.0)


def test_send_held_keeps_the_batches_while_k_calls_are_outstanding(ray_session):
    server = _ScriptedServer(limit=100)
    client = RayReplayClient(server, "t", max_in_flight_inserts=2, max_coalesced_items=8,
                             min_call_interval_s=60.0)
    client.insert(_ids(0))
    client.insert(_ids(2))  # Within T: held.
    assert server.sizes() == [2] and client.buffered_items == 2
    client.send_held()  # One call outstanding, a slot free: sent.
    assert server.sizes() == [2, 2] and client.buffered_items == 0
    client.insert(_ids(4))  # Held (k calls outstanding, and within T).
    client.send_held()  # No free slot: kept, without waiting.
    assert server.sizes() == [2, 2] and client.buffered_items == 2
    server.finish()
    client.send_held()
    assert server.sizes() == [2, 2, 2] and client.buffered_items == 0
    server.finish()
    client.flush()


def test_client_never_holds_for_a_queue(ray_session):
    """A merge limit of 0 (a queue table) disables holding: every batch is its own call."""
    server = _ScriptedServer(limit=0)
    server.finish_at_once = True
    client = RayReplayClient(server, "t", max_in_flight_inserts=2, min_call_interval_s=60.0)
    for start in range(0, 8, 2):
        client.insert(_ids(start))
    assert server.sizes() == [2, 2, 2, 2] and client.buffered_items == 0
