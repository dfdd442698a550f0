"""Unit tests for distrl.replay: storage, sum tree, samplers, tables and the local client."""

from __future__ import annotations

import pickle
import threading
from typing import NamedTuple

import numpy as np
import pytest

from distrl.replay import (
    ArrayStorage,
    FifoSampler,
    LocalReplayClient,
    MinSize,
    PrioritizedSampler,
    SampleToInsertRatio,
    SumTree,
    Table,
    UniformSampler,
)
from distrl.types import Transition


def transitions(start: int, n: int) -> Transition:
    """A batch of CartPole-shaped transitions whose action is its insertion index."""
    index = np.arange(start, start + n)
    return Transition(
        observation=np.repeat(index[:, None], 4, axis=1).astype(np.float32),
        action=index.astype(np.int64),
        reward=index.astype(np.float32),
        discount=np.ones(n, np.float32),
        next_observation=np.repeat(index[:, None] + 1, 4, axis=1).astype(np.float32),
        extras=(),
    )


def chi_square(counts: np.ndarray, expected: np.ndarray) -> float:
    return float(np.sum((counts - expected) ** 2 / expected))


def chi_square_limit(dof: int) -> float:
    """A tolerant upper bound: mean + 6 standard deviations of chi-square(dof)."""
    return dof + 6.0 * np.sqrt(2.0 * dof)


# Storage.


class Inner(NamedTuple):
    position: np.ndarray
    flags: tuple


def test_storage_round_trips_nested_items_across_the_wrap():
    def batch(start, n):
        i = np.arange(start, start + n)
        return {
            "obs": Inner(position=np.stack([i, -i], 1).astype(np.float64), flags=(i % 2 == 0, ())),
            "step": i.astype(np.int32),
            "extras": (),
        }

    storage = ArrayStorage(5)
    storage.add(batch(0, 3))
    slots = storage.add(batch(3, 4))  # Wraps: slots 3, 4, 0, 1; evicts items 0 and 1.
    np.testing.assert_array_equal(slots, [3, 4, 0, 1])
    assert storage.size == 5 and storage.evictions == 2
    got = storage.get(np.array([2, 3, 4, 0, 1]))
    want = batch(2, 5)
    assert got["extras"] == () and got["obs"].flags[1] == ()
    assert isinstance(got["obs"], Inner)
    np.testing.assert_array_equal(got["obs"].position, want["obs"].position)
    np.testing.assert_array_equal(got["obs"].flags[0], want["obs"].flags[0])
    np.testing.assert_array_equal(got["step"], want["step"])
    assert got["step"].dtype == np.int32
    np.testing.assert_array_equal(storage.keys(np.array([2, 3, 4, 0, 1])), [2, 3, 4, 5, 6])


def test_storage_rejects_mismatches_naming_the_leaf():
    storage = ArrayStorage(8)
    storage.add(transitions(0, 2))
    bad_dtype = transitions(2, 2)._replace(reward=np.zeros(2, np.float64))
    with pytest.raises(ValueError, match="reward.*float64.*float32"):
        storage.add(bad_dtype)
    bad_shape = transitions(2, 2)._replace(observation=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"observation.*\(3,\).*\(4,\)"):
        storage.add(bad_shape)
    ragged = transitions(2, 2)._replace(discount=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="discount.*batch size 3"):
        storage.add(ragged)
    with pytest.raises(ValueError, match="batch of 9 items.*max_size 8"):
        storage.add(transitions(0, 9))
    with pytest.raises(ValueError, match="scalar"):
        ArrayStorage(4).add({"x": np.float32(1.0)})
    assert storage.size == 2 and storage.inserted == 2


def test_storage_fast_check_still_catches_every_mismatch():
    """Once a batch shape is cached, batches of that shape take the fast check,
    which must still reject (naming the leaf) whatever the full check rejects."""
    storage = ArrayStorage(16)
    storage.add(transitions(0, 2))
    storage.add(transitions(2, 2))  # Fixes the signature, then caches batch shape 2.
    with pytest.raises(ValueError, match="reward.*float64.*float32"):
        storage.add(transitions(4, 2)._replace(reward=np.zeros(2, np.float64)))
    with pytest.raises(ValueError, match=r"observation.*float64.*float32"):
        storage.add(transitions(4, 2)._replace(observation=np.zeros((2, 4), np.float64)))
    with pytest.raises(ValueError, match=r"next_observation.*\(5,\).*\(4,\)"):
        storage.add(transitions(4, 2)._replace(next_observation=np.zeros((2, 5), np.float32)))
    with pytest.raises(ValueError, match="discount.*batch size 3"):
        storage.add(transitions(4, 2)._replace(discount=np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="6 leaves"):
        storage.add(transitions(4, 2)._replace(extras={"policy_version": np.zeros(2, np.int64)}))
    with pytest.raises(ValueError, match="action.*scalar"):
        storage.add(transitions(4, 2)._replace(action=np.int64(4)))
    assert storage.inserted == 4
    # As before, the nest structure is checked by leaf count and leaves are matched by position.
    storage.add(transitions(4, 2)._replace(extras=[]))
    storage.add(tuple(transitions(6, 2)))
    np.testing.assert_array_equal(storage.get(np.arange(8)).action, np.arange(8))
    np.testing.assert_array_equal(storage.keys(np.array([0, 7, 8, 15])), [0, 7, -1, -1])


def test_table_counts_evictions_of_refilled_slots():
    table = Table("t", 4, UniformSampler(seed=0), MinSize(1), max_times_sampled=1)
    table.insert(transitions(0, 4))
    table.sample(1)  # Retires one item; its slot is refilled below without an eviction.
    np.testing.assert_array_equal(table.insert(transitions(4, 4)), [4, 5, 6, 7])
    info = table.info()
    assert (info["size"], info["evictions"], info["removals"]) == (4, 3, 1)
    assert table.rate_limiter.deletes == 4
    batch = table.sample(8)
    np.testing.assert_array_equal(batch.keys, batch.data.action)


def test_storage_state_round_trip():
    storage = ArrayStorage(6)
    storage.add(transitions(0, 5))
    storage.add(transitions(5, 3))
    storage.remove(np.array([3]))
    restored = ArrayStorage(6)
    restored.set_state(pickle.loads(pickle.dumps(storage.get_state())))
    assert (restored.size, restored.inserted, restored.evictions) == (5, 8, 2)
    slots = np.arange(6)
    np.testing.assert_array_equal(restored.get(slots).action, storage.get(slots).action)
    np.testing.assert_array_equal(restored.find(np.arange(8))[1], storage.find(np.arange(8))[1])
    assert restored.add(transitions(8, 1))[0] == 2


# Sum tree.


def test_sum_tree_total_prefix_sums_and_search_match_cumsum():
    rng = np.random.default_rng(0)
    tree = SumTree(1000)  # Not a power of two.
    values = rng.exponential(size=1000)
    values[rng.choice(1000, 100, replace=False)] = 0.0
    tree.set(np.arange(1000), values)
    # Batch updates with duplicate indices: the last value wins.
    tree.set(np.array([5, 7, 5]), np.array([1.0, 2.0, 3.0]))
    values[[5, 7]] = [3.0, 2.0]
    cumsum = np.cumsum(values)
    assert tree.total == pytest.approx(cumsum[-1], rel=1e-12)
    np.testing.assert_allclose(tree.prefix_sums(), np.concatenate(([0.0], cumsum[:-1])))
    np.testing.assert_allclose(tree.values, values)
    targets = rng.uniform(0, tree.total, size=10_000)
    np.testing.assert_array_equal(tree.find(targets), np.searchsorted(cumsum, targets, side="right"))
    # Targets at (or past) the very end never land on a zero leaf.
    end = tree.find(np.array([tree.total, tree.total * (1 + 1e-12)]))
    assert np.all(values[end] > 0)
    # A contiguous range update gives the same tree as the indexed one.
    ranged, indexed = SumTree(1000), SumTree(1000)
    for start, n in [(0, 1000), (3, 250), (998, 2), (511, 2), (0, 1)]:
        new = rng.exponential(size=n)
        ranged.set_range(start, new)
        indexed.set(np.arange(start, start + n), new)
        np.testing.assert_allclose(ranged.prefix_sums(), indexed.prefix_sums())
        assert ranged.total == pytest.approx(indexed.total, rel=1e-12)
    restored = SumTree(1000)
    restored.set_state(tree.get_state())
    assert restored.total == pytest.approx(tree.total)
    np.testing.assert_array_equal(restored.find(targets), tree.find(targets))


# Samplers.


def test_uniform_sampler_is_uniform_including_after_removals():
    sampler = UniformSampler(seed=1)
    sampler.bind(200)
    sampler.insert(np.arange(200), None)
    removed = np.random.default_rng(2).choice(200, 80, replace=False)
    sampler.remove(removed)
    sampler.insert(np.arange(150, 170), None)  # Re-fills some removed slots.
    live = np.setdiff1d(np.arange(200), np.setdiff1d(removed, np.arange(150, 170)))
    assert sampler.size == live.size
    counts = np.zeros(200)
    for _ in range(100):
        slots, probabilities, weights = sampler.sample(1000)
        np.add.at(counts, slots, 1)
        np.testing.assert_allclose(probabilities, 1.0 / live.size)
        assert np.all(weights == 1)
    assert np.all(counts[np.setdiff1d(np.arange(200), live)] == 0)
    expected = np.full(live.size, counts.sum() / live.size)
    assert chi_square(counts[live], expected) < chi_square_limit(live.size - 1)


def test_prioritized_sampler_frequencies_follow_p_to_the_alpha():
    alpha = 0.7
    sampler = PrioritizedSampler(alpha=alpha, beta=1.0, eps=1e-9, seed=3)
    sampler.bind(16)
    priorities = np.arange(1.0, 17.0)
    sampler.insert(np.arange(16), priorities)
    counts = np.zeros(16)
    for _ in range(10_000):  # Small stratified batches: each stratum spans several items.
        np.add.at(counts, sampler.sample(7).slots, 1)
    expected_p = priorities**alpha / np.sum(priorities**alpha)
    np.testing.assert_allclose(sampler.sum_tree.values, priorities**alpha, rtol=1e-6)
    assert chi_square(counts, expected_p * counts.sum()) < chi_square_limit(15)


def test_importance_weights_match_hand_computation():
    sampler = PrioritizedSampler(alpha=1.0, beta=0.5, eps=1e-12, seed=4)
    sampler.bind(4)
    sampler.insert(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    slots, probabilities, weights = sampler.sample(8)
    p = np.array([0.1, 0.2, 0.3, 0.4])  # q_i / sum q with q = p ** 1.
    np.testing.assert_allclose(probabilities, p[slots])
    raw = (4 * p[slots]) ** -0.5
    np.testing.assert_allclose(weights, raw / raw.max(), rtol=1e-6)
    assert weights.dtype == np.float32 and weights.max() == 1.0


def test_new_items_get_the_max_priority_seen():
    sampler = PrioritizedSampler(alpha=0.5, eps=1e-6, seed=0)
    sampler.bind(4)
    sampler.insert(np.arange(2), None)
    assert sampler.max_priority == 1.0
    sampler.update_priorities(np.array([0]), np.array([9.0]))
    sampler.insert(np.array([2]), None)
    assert sampler.sum_tree.get(np.array([2]))[0] == pytest.approx((9.0 + 1e-6) ** 0.5)


def test_fifo_sampler_returns_the_oldest_and_removes_from_the_front():
    sampler = FifoSampler()
    sampler.bind(4)
    sampler.insert(np.array([0, 1, 2]), None)
    np.testing.assert_array_equal(sampler.sample(2).slots, [0, 1])
    sampler.remove(np.array([0, 1]))
    sampler.insert(np.array([3, 0, 1]), None)
    np.testing.assert_array_equal(sampler.sample(4).slots, [2, 3, 0, 1])
    with pytest.raises(ValueError, match="oldest"):
        sampler.remove(np.array([3]))
    with pytest.raises(ValueError, match="cannot sample 5"):
        sampler.sample(5)


# Tables.


def test_table_evicts_fifo_and_keys_identify_items():
    table = Table("fifo", 5, UniformSampler(seed=0), MinSize(1))
    np.testing.assert_array_equal(table.insert(transitions(0, 3)), [0, 1, 2])
    np.testing.assert_array_equal(table.insert(transitions(3, 4)), [3, 4, 5, 6])
    info = table.info()
    assert (info["size"], info["inserts"], info["evictions"]) == (5, 7, 2)
    assert table.rate_limiter.deletes == 2
    seen = set()
    for _ in range(20):
        batch = table.sample(8)
        np.testing.assert_array_equal(batch.keys, batch.data.action)
        seen.update(batch.keys.tolist())
    assert seen == {2, 3, 4, 5, 6}


def test_update_priorities_ignores_evicted_keys():
    table = Table("per", 4, PrioritizedSampler(alpha=1.0, eps=1e-9, seed=0), MinSize(1))
    table.insert(transitions(0, 4), priorities=np.ones(4))
    table.insert(transitions(4, 2), priorities=np.full(2, 2.0))  # Keys 4, 5 take slots 0, 1.
    table.update_priorities(np.array([0, 1, 4, 99]), np.array([100.0, 100.0, 5.0, 100.0]))
    np.testing.assert_allclose(table.sampler.sum_tree.values, [5.0, 2.0, 1.0, 1.0], rtol=1e-6)
    assert table.sampler.max_priority == 5.0


def test_max_times_sampled_removes_items_and_their_keys_go_stale():
    table = Table("once", 10, PrioritizedSampler(seed=0), MinSize(1), max_times_sampled=1)
    table.insert(transitions(0, 6))
    batch = table.sample(3)
    removed = np.unique(batch.keys)
    assert table.size == 6 - removed.size
    assert table.info()["removals"] == removed.size
    table.update_priorities(removed, np.full(removed.size, 50.0))  # Ignored: gone.
    assert table.sampler.max_priority == 1.0
    gone = set(removed.tolist())
    while table.size:
        key = int(table.sample(1).keys[0])
        assert key not in gone
        gone.add(key)
    assert gone == set(range(6))
    assert not table.can_sample(1)


def test_queue_consumes_each_item_once_in_order_with_threads():
    table = Table.queue("queue", 16)
    total, consumed, sizes = 1000, [], []

    def produce():
        start = 0
        while start < total:
            n = min(7, total - start)
            table.insert(transitions(start, n), timeout=10)
            sizes.append(table.size)
            start += n

    producer = threading.Thread(target=produce)
    producer.start()
    while len(consumed) < total:
        consumed.extend(table.sample(5, timeout=10).data.action.tolist())
    producer.join(timeout=10)
    assert consumed == list(range(total))
    assert max(sizes) <= 16
    info = table.info()
    assert (info["size"], info["inserts"], info["samples"], info["evictions"]) == (0, total, total, 0)


def test_queue_inserts_wait_when_full():
    table = Table.queue("queue", 4)
    table.insert(transitions(0, 3))
    assert not table.can_insert(2) and table.can_insert(1)
    with pytest.raises(TimeoutError, match="timed out after 0.05 s.*2 item.*inserted.*size=3"):
        table.insert(transitions(3, 2), timeout=0.05)
    with pytest.raises(TimeoutError, match="does not wait"):
        table.insert(transitions(3, 2), block=False)  # A queue never overwrites unread items.
    with pytest.raises(ValueError, match="never fit"):
        table.sample(5, timeout=0.05)
    np.testing.assert_array_equal(table.sample(2).data.action, [0, 1])
    table.insert(transitions(3, 2), timeout=0.05)
    np.testing.assert_array_equal(table.sample(3).data.action, [2, 3, 4])


@pytest.mark.parametrize(
    "make_table",
    [
        lambda: Table("u", 8, UniformSampler(seed=5), SampleToInsertRatio(2.0, 3, 4.0)),
        lambda: Table("p", 8, PrioritizedSampler(seed=5), MinSize(2), max_times_sampled=3),
        lambda: Table.queue("q", 8),
    ],
)
def test_table_state_round_trip(make_table):
    table = make_table()
    table.insert(transitions(0, 6), block=False)
    batch = table.sample(2, block=False)
    table.update_priorities(batch.keys, np.array([3.0, 0.5]))
    table.insert(transitions(6, 4), block=False)
    restored = make_table()
    restored.set_state(pickle.loads(pickle.dumps(table.get_state())))
    assert restored.info() == table.info()
    for _ in range(2):
        a, b = table.sample(2, block=False), restored.sample(2, block=False)
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_array_equal(a.data.observation, b.data.observation)
        np.testing.assert_array_equal(a.weights, b.weights)


def test_table_rejects_min_size_above_max_size():
    with pytest.raises(ValueError, match="min_size_to_sample \\(10\\) exceeds max_size \\(5\\)"):
        Table("t", 5, UniformSampler(), MinSize(10))


def test_local_client_single_process_loop_keeps_the_ratio():
    spi, batch_size = 4.0, 8
    limiter = SampleToInsertRatio(spi, 20, 2 * batch_size)
    table = Table("local", 1000, UniformSampler(seed=0), limiter)
    client = LocalReplayClient(table)
    with pytest.raises(TimeoutError, match="does not wait"):
        client.sample(batch_size)
    learner_steps = 0
    for step in range(500):
        client.insert(transitions(step, 1))  # Never waits, even past the window.
        while client.can_sample(batch_size):
            client.sample(batch_size)
            learner_steps += 1
    info = client.info()
    assert info["inserts"] == 500 and info["samples"] == learner_steps * batch_size
    # Learner steps run until the next would cross min_diff, overshooting by less than a batch.
    diff = 500 * spi - learner_steps * batch_size
    assert limiter.min_diff - (batch_size - 1) <= diff < limiter.min_diff + 1
    assert info["samples_per_insert"] == pytest.approx(spi, rel=0.05)
