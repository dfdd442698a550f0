"""Deduplicated image replay against the plain layout, on hand-built episodes.

Observations are built the way gymnasium's ``FrameStackObservation`` builds
them (the first stack repeats the reset frame), every episode starts on the
same reset frame and repeats one frame (a static screen), and the real
``NStepTransitionAdder`` turns them into transitions, so observation and
next_observation share frames within and across items and episodes. Two
actors (adders) insert interleaved batches into storages or tables with and
without ``deduplicate_frames``; everything read back must be identical.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from typing import Any, Callable, Mapping, Sequence

import dm_env
import numpy as np
import pytest
import tree

from distrl.adders import NStepTransitionAdder
from distrl.replay import ArrayStorage, FifoSampler, MinSize, PrioritizedSampler, Queue, Table, UniformSampler
from distrl.replay.client import ReplayClient
from distrl.types import Nest, SampleBatch, Transition

# name: (observation shape, frames per observation). HWC colour images are one frame each.
LAYOUTS = {"stack4": ((4, 6, 6), 4), "stack3_odd_bytes": ((3, 5, 5), 3), "hwc": ((5, 5, 3), 1)}


def make_episodes(seed: int, lengths: Sequence[int], layout: str) -> list[tuple[list[np.ndarray], str]]:
    """Episodes of observations o_0..o_L and how each ends (termination/truncation, alternating)."""
    shape, k = LAYOUTS[layout]
    frame_shape = shape if k == 1 else shape[1:]
    rng = np.random.default_rng(seed)
    reset_frame = np.full(frame_shape, 7, np.uint8)  # The same in every episode.
    episodes = []
    for e, length in enumerate(lengths):
        frames = [reset_frame] + [rng.integers(0, 256, frame_shape, dtype=np.uint8) for _ in range(length)]
        if length >= 3:
            frames[2] = frames[1].copy()  # A static screen.
        if k == 1:
            observations = frames
        else:
            observations = [np.stack([frames[max(0, i)] for i in range(t - k + 1, t + 1)]) for t in range(length + 1)]
        episodes.append((observations, "termination" if e % 2 else "truncation"))
    return episodes


class TeeClient(ReplayClient):
    """Inserts every batch into each of ``sinks`` (tables or storages) and calls ``check`` after it."""

    def __init__(self, sinks: Sequence[Any], check: Callable[[], None] | None = None):
        self.sinks, self.check, self.items = sinks, check, []

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        for sink in self.sinks:
            if isinstance(sink, Table):
                sink.insert(items, block=False)
            else:
                sink.add(items)
        self.items.extend(tree.map_structure(lambda leaf, i=i: leaf[i], items) for i in range(len(items.reward)))
        if self.check is not None:
            self.check()

    def sample(self, batch_size: int) -> SampleBatch:
        raise NotImplementedError

    def can_sample(self, batch_size: int) -> bool:
        return False

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        raise NotImplementedError

    def info(self) -> Mapping[str, Any]:
        return {}


def play(client: TeeClient, episodes_per_actor: Sequence[list], n_step: int, batch_sizes: Sequence[int]) -> None:
    """Runs one adder per actor, interleaving the actors step by step, then flushes them."""

    def steps(actor: int, episodes: list):
        for e, (observations, ending) in enumerate(episodes):
            yield None, dm_env.restart(observations[0]), None
            for t, observation in enumerate(observations[1:]):
                reward = float(100 * e + t)
                if t < len(observations) - 2:
                    timestep = dm_env.transition(reward, observation, discount=1.0)
                elif ending == "termination":
                    timestep = dm_env.termination(reward, observation)
                else:
                    timestep = dm_env.truncation(reward, observation)
                yield np.int64(t), timestep, {"policy_version": np.int64(1000 * actor + e)}

    adders = [NStepTransitionAdder(client, n_step, 0.9, b) for b in batch_sizes]
    streams = [steps(a, eps) for a, eps in enumerate(episodes_per_actor)]
    alive = list(range(len(streams)))
    while alive:
        for a in list(alive):
            event = next(streams[a], None)
            if event is None:
                alive.remove(a)
            elif event[0] is None:
                adders[a].add_first(event[1])
            else:
                adders[a].add(event[0], event[1], extras=event[2])
    for adder in adders:
        adder.flush()


def assert_nests_identical(a: Nest, b: Nest) -> None:
    assert tree.map_structure(lambda x: 0, a) == tree.map_structure(lambda x: 0, b)
    for x, y in zip(tree.flatten(a), tree.flatten(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def present_slots(storage: ArrayStorage) -> tuple[np.ndarray, np.ndarray]:
    keys = np.arange(max(0, storage.inserted - storage.max_size), storage.inserted)
    slots, present = storage.find(keys)
    return keys[present], slots[present]


def assert_storages_identical(plain: ArrayStorage, framed: ArrayStorage) -> None:
    """Same items present with identical contents, and pool counts equal to the references held."""
    keys, slots = present_slots(plain)
    framed_keys, framed_slots = present_slots(framed)
    np.testing.assert_array_equal(keys, framed_keys)
    assert plain.size == framed.size == keys.size
    assert_nests_identical(plain.get(slots), framed.get(framed_slots))
    for pool, rows in zip(framed.frames.pools, framed.frames.pool_rows(framed_slots)):
        expected = np.bincount(rows.ravel(), minlength=pool.capacity)
        np.testing.assert_array_equal(pool.refcount(np.arange(pool.capacity)), expected)
        assert pool.size == np.count_nonzero(expected) == pool.capacity - pool.num_free


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("n_step", [1, 3])
def test_storage_reads_back_the_plain_layout_through_wraps_and_episode_boundaries(layout, n_step):
    plain, framed = ArrayStorage(13), ArrayStorage(13, deduplicate_frames=True)
    client = TeeClient([plain, framed], check=lambda: assert_storages_identical(plain, framed))
    actors = [make_episodes(0, [1, 5, 2, 9, 3, 4, 1, 7], layout), make_episodes(1, [6, 1, 3, 8, 2, 5], layout)]
    play(client, actors, n_step, batch_sizes=[3, 4])
    assert plain.inserted == framed.inserted == len(client.items) > 4 * plain.max_size  # Wrapped often.
    (pool,) = framed.frames.pools
    _, k = LAYOUTS[layout]
    assert framed.frames.positions == [0, 4]  # observation and next_observation (Transition field order).
    assert pool.size < 2 * k * framed.size  # Frames are shared.
    assert framed.evictions == plain.evictions and framed.frames.evictions == 0


@pytest.mark.parametrize("sampler", [lambda: UniformSampler(seed=3), lambda: PrioritizedSampler(seed=3)])
@pytest.mark.parametrize("n_step", [1, 3])
def test_tables_sample_identical_items_with_and_without_deduplication(sampler, n_step):
    tables = [Table("t", 21, sampler(), MinSize(1), deduplicate_frames=d) for d in (False, True)]
    client = TeeClient(tables)
    play(client, [make_episodes(2, [4, 1, 6, 3, 10, 2, 5], "stack4"), make_episodes(3, [7, 2, 9, 1, 4], "stack4")],
         n_step, batch_sizes=[5, 2])
    plain, framed = tables
    for _ in range(30):
        a, b = plain.sample(16), framed.sample(16)
        np.testing.assert_array_equal(a.keys, b.keys)
        assert_nests_identical(a.data, b.data)
        for key, observation in zip(b.keys, b.data.observation):  # Against what was inserted.
            np.testing.assert_array_equal(observation, client.items[key].observation)
    info = framed.info()
    assert info["frame_pool_entries"] > 0 and info["frame_pool_capacity"] == 21 * 8
    assert info["replay_bytes"] > 0 and plain.info()["frame_pool_capacity"] == 0
    assert {k: v for k, v in plain.info().items() if not k.startswith(("frame_pool", "replay_bytes"))} == {
        k: v for k, v in info.items() if not k.startswith(("frame_pool", "replay_bytes"))}


def drain(tables: Sequence[Table], batch_size: int) -> None:
    """Samples both tables while they can, checking they return identical items."""
    while tables[0].can_sample(batch_size):
        a, b = (t.sample(batch_size, block=False) for t in tables)
        np.testing.assert_array_equal(a.keys, b.keys)
        assert_nests_identical(a.data, b.data)


def test_queue_consumption_releases_frames_and_matches_the_plain_layout():
    tables = [Table("q", 64, FifoSampler(), Queue(64), max_times_sampled=1, deduplicate_frames=d)
              for d in (False, True)]
    client = TeeClient(tables, check=lambda: drain(tables, 3))
    play(client, [make_episodes(4, [5, 2, 8, 1, 6], "stack4"), make_episodes(5, [3, 9, 2, 4], "stack4")],
         3, batch_sizes=[4, 3])
    plain, framed = tables
    assert framed.size == plain.size < 3
    drain(tables, 1)
    assert framed.size == 0 and framed.info()["frame_pool_entries"] == 0  # Every frame released.
    assert framed.info()["removals"] == plain.info()["removals"] == len(client.items)


def test_items_retired_by_max_times_sampled_release_their_frames():
    tables = [Table("m", 40, UniformSampler(seed=9), MinSize(1), max_times_sampled=1, deduplicate_frames=d)
              for d in (False, True)]
    client = TeeClient(tables, check=lambda: drain(tables, 4) if tables[0].size > 20 else None)
    play(client, [make_episodes(6, [6, 3, 9, 2, 7, 4], "stack4"), make_episodes(7, [8, 1, 5, 6], "stack4")],
         3, batch_sizes=[3, 5])
    plain, framed = tables
    while plain.size:
        drain(tables, 1)
    info = framed.info()
    assert info["frame_pool_entries"] == 0 and info["removals"] == plain.info()["removals"] > 0


@pytest.mark.parametrize("make_sampler", [lambda: UniformSampler(seed=4), lambda: PrioritizedSampler(seed=4), None])
def test_pool_pressure_evicts_the_oldest_items_which_are_never_sampled(make_sampler):
    def table(deduplicate):
        if make_sampler is None:
            return Table("p", 30, FifoSampler(), Queue(30), max_times_sampled=1, deduplicate_frames=deduplicate,
                         frames_per_item=0.4, frame_pool_reserve=0)
        return Table("p", 30, make_sampler(), MinSize(1), deduplicate_frames=deduplicate,
                     frames_per_item=0.4, frame_pool_reserve=0)

    framed = table(True)
    sampled: list[int] = []

    def check():
        info = framed.info()
        assert info["frame_pool_entries"] <= info["frame_pool_capacity"] == 12
        assert framed.sampler.size == framed.size == framed.rate_limiter.size
        assert info["inserts"] - info["evictions"] - info["removals"] == framed.size
        newest = info["inserts"] - framed.size  # Evictions take the oldest: present keys are the newest.
        if not framed.size:
            return
        batch = framed.sample(1 if make_sampler is None else 4, block=False)  # The queue slowly: it fills.
        assert batch.keys.min() >= newest
        for key, observation, next_observation in zip(batch.keys, batch.data.observation,
                                                      batch.data.next_observation):
            np.testing.assert_array_equal(observation, client.items[key].observation)
            np.testing.assert_array_equal(next_observation, client.items[key].next_observation)
        sampled.extend(batch.keys.tolist())

    client = TeeClient([framed], check=check)
    with pytest.warns(RuntimeWarning, match="frame pool full"):
        play(client, [make_episodes(8, [9, 4, 12, 3, 8], "stack4"), make_episodes(9, [11, 2, 7, 10], "stack4")],
             3, batch_sizes=[3, 2])
    info = framed.info()
    assert info["frame_pool_evictions"] > 0 and info["evictions"] >= info["frame_pool_evictions"]
    assert framed.size < 30 and framed.rate_limiter.deletes == info["evictions"] + info["removals"]
    assert len(set(sampled)) > 20 if make_sampler else len(sampled) == len(set(sampled)) > 10


def test_a_batch_larger_than_the_pool_raises_and_changes_nothing():
    table = Table("big", 50, UniformSampler(seed=0), MinSize(1), deduplicate_frames=True,
                  frames_per_item=0.1, frame_pool_reserve=0)
    client = TeeClient([table])
    play(client, [make_episodes(10, [2], "stack4")], 3, batch_sizes=[1])
    before = table.info()
    big = make_episodes(11, [12], "stack4")  # 11 new frames; the pool has 8 entries.
    with pytest.raises(ValueError, match="more new frames"):
        play(TeeClient([table]), [big], 1, batch_sizes=[12])
    assert table.info() == before
    with pytest.warns(RuntimeWarning, match="evicted early"):
        play(TeeClient([table]), [big], 1, batch_sizes=[1])  # One at a time fits (evicting old items).
    assert table.size >= 1


def test_tables_without_image_leaves_are_unchanged():
    def batch(start, n):
        i = np.arange(start, start + n)
        return Transition(np.repeat(i[:, None], 4, 1).astype(np.float32), i, i.astype(np.float32),
                          np.ones(n, np.float32), np.full((n, 4, 6, 6), 3.0, np.float32),
                          {"pixels": np.full((n, 6, 6), 1, np.uint8)})  # float images and rank-2 uint8 stay plain.

    tables = [Table("v", 10, UniformSampler(seed=1), MinSize(1), deduplicate_frames=d) for d in (False, True)]
    for t in tables:
        for start in range(0, 37, 4):
            t.insert(batch(start, 4))
    a, b = tables
    assert a.info() == b.info() and b.info()["frame_pool_capacity"] == 0
    assert a.get_state()["storage"]["frames"] is None is b.get_state()["storage"]["frames"]
    for _ in range(5):
        x, y = a.sample(8), b.sample(8)
        np.testing.assert_array_equal(x.keys, y.keys)
        assert_nests_identical(x.data, y.data)


@pytest.mark.parametrize("pressure", [False, True])
def test_table_state_round_trip_with_frames(pressure):
    options = {"frames_per_item": 0.5, "frame_pool_reserve": 0} if pressure else {}

    def make():
        return Table("s", 24, UniformSampler(seed=6), MinSize(1), deduplicate_frames=True, **options)

    table = make()
    actors = [make_episodes(12, [7, 3, 9, 2], "stack4"), make_episodes(13, [5, 8, 1], "stack4")]
    with pytest.warns(RuntimeWarning) if pressure else no_runtime_warning():
        play(TeeClient([table]), actors, 3, batch_sizes=[3, 2])
    restored = make()
    restored.set_state(pickle.loads(pickle.dumps(table.get_state())))
    assert restored.info() == table.info()
    assert (table.info()["frame_pool_evictions"] > 0) == pressure
    more = [make_episodes(14, [6, 4, 10], "stack4"), make_episodes(15, [3, 7], "stack4")]
    for t in (table, restored):  # Both keep deduplicating and evicting the same way.
        play(TeeClient([t]), more, 3, batch_sizes=[2, 3])
    assert restored.info() == table.info()
    for _ in range(5):
        a, b = table.sample(8), restored.sample(8)
        np.testing.assert_array_equal(a.keys, b.keys)
        assert_nests_identical(a.data, b.data)
    plain = Table("s", 24, UniformSampler(seed=6), MinSize(1))
    with pytest.raises(ValueError, match="deduplicated image leaves"):
        plain.set_state(table.get_state())


@contextlib.contextmanager
def no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield
