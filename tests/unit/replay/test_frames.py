"""Unit tests for distrl.replay.frames: the content-addressed, reference-counted frame pool."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from distrl.replay.frames import FramePool, frame_layout


def frames(*values: int, shape=(6, 6)) -> np.ndarray:
    """Frames filled with the given byte values, [len(values), *shape] uint8."""
    return np.stack([np.full(shape, v, np.uint8) for v in values])


def live_counts(pool: FramePool) -> np.ndarray:
    return pool.refcount(np.arange(pool.capacity))


@pytest.mark.parametrize(
    "dtype, shape, layout",
    [(np.uint8, (4, 84, 84), (4, (84, 84))), (np.uint8, (3, 5, 5), (3, (5, 5))),
     (np.uint8, (1, 6, 6), (1, (6, 6))), (np.uint8, (84, 84, 3), (1, (84, 84, 3))),
     (np.uint8, (2, 3, 4, 5), (2, (3, 4, 5))), (np.uint8, (6, 6, 6), (1, (6, 6, 6))),
     (np.uint8, (84, 84), None), (np.float32, (4, 84, 84), None), (np.int64, (3, 5, 5), None)],
)
def test_frame_layout_splits_stack_first_images_and_keeps_hwc_images_whole(dtype, shape, layout):
    assert frame_layout(np.dtype(dtype), shape) == layout


def test_add_dedupes_within_a_batch_and_counts_every_reference():
    pool = FramePool(8, (6, 6))
    batch = frames(1, 2, 1, 1, 3)
    entries = pool.add(batch)
    assert entries.shape == (5,) and entries[0] == entries[2] == entries[3]
    assert len({int(entries[0]), int(entries[1]), int(entries[4])}) == 3
    assert pool.size == 3 and pool.num_free == 5
    np.testing.assert_array_equal(pool.refcount(entries[[0, 1, 4]]), [3, 1, 1])
    np.testing.assert_array_equal(pool.gather(entries), batch)


def test_add_dedupes_across_batches():
    pool = FramePool(8, (6, 6))
    first = pool.add(frames(1, 2))
    second = pool.add(frames(2, 3, 1))
    assert second[0] == first[1] and second[2] == first[0] and second[1] not in first
    assert pool.size == 3
    np.testing.assert_array_equal(pool.refcount(first), [2, 2])
    np.testing.assert_array_equal(pool.gather(np.stack([first, second[:2]])), [frames(1, 2), frames(2, 3)])


def test_release_frees_entries_at_zero_and_they_are_reused():
    pool = FramePool(3, (6, 6))
    a = pool.add(frames(1, 1, 2, 3))
    assert pool.num_free == 0
    with pytest.raises(ValueError, match="frame pool full"):
        pool.add(frames(4))
    np.testing.assert_array_equal(live_counts(pool)[a[[0, 2, 3]]], [2, 1, 1])  # Unchanged by the failure.
    assert pool.release(a[:1]) == 0 and pool.size == 3  # Frame 1 still has a reference.
    assert pool.release(a[1:3]) == 2 and pool.size == 1  # Frames 1 and 2 freed.
    with pytest.raises(ValueError, match="released more references"):
        pool.release(a[:1])
    assert pool.size == 1 and live_counts(pool).sum() == 1
    b = pool.add(frames(4, 5))
    assert set(b.tolist()) == set(a[:3].tolist())  # The freed entries.
    np.testing.assert_array_equal(pool.gather(b), frames(4, 5))
    pool.release(b[1:])
    again = pool.add(frames(1))  # Frame 1 left the index with its entry (now frame 4's): no stale hit.
    assert pool.num_free == 0 and again[0] == b[1]
    np.testing.assert_array_equal(pool.gather(np.concatenate([b[:1], again])), frames(4, 1))
    pool.release(np.concatenate([a[3:], b[:1], again]))
    assert pool.size == 0 and pool.num_free == 3 and not live_counts(pool).any()


def test_hash_collisions_store_both_frames_and_read_back_exactly(monkeypatch):
    pool = FramePool(8, (6, 6))
    monkeypatch.setattr(pool, "hash", lambda batch: np.zeros(len(batch), np.uint64))  # Every frame collides.
    batch = frames(1, 2, 1, 3)
    entries = pool.add(batch)
    assert entries[0] == entries[2] and len(set(entries.tolist())) == 3  # Equal frames still share.
    np.testing.assert_array_equal(pool.gather(entries), batch)
    later = pool.add(frames(1, 2))  # Frame 1 hits its indexed entry; frame 2 collides with it.
    assert later[0] == entries[0] and later[1] not in entries
    alone = pool.add(frames(2))  # Frame 2 first in its batch: looks up frame 1's entry, verified, stored anew.
    assert alone[0] not in entries and alone[0] != later[1]
    np.testing.assert_array_equal(pool.gather(np.concatenate([later, alone])), frames(1, 2, 2))
    assert pool.size == 5
    pool.release(np.concatenate([entries, later]))
    third = pool.add(frames(3))  # Hash free again: frame 3 stored and indexed anew...
    assert pool.add(frames(3))[0] == third[0]  # ...so it dedupes again.
    np.testing.assert_array_equal(pool.gather(third), frames(3))
    pool.release(np.concatenate([alone, third, third]))
    assert pool.size == 0 and pool.num_free == 8


def test_hashes_are_fixed_and_distinct_for_distinct_frames():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2000, 84, 84), dtype=np.uint8)
    batch[1, 83, 83] ^= 0x80  # Frames differing in one top bit.
    batch[2] = batch[0]
    batch[2, 0, 3] ^= 0x80
    batch[2, 0, 7] ^= 0x80
    hashes = FramePool(4, (84, 84)).hash(batch)
    assert hashes.dtype == np.uint64 and hashes.max() < 2**60
    assert len(np.unique(hashes)) == len(batch)
    np.testing.assert_array_equal(FramePool(9, (84, 84)).hash(batch[:5]), hashes[:5])  # Same in every pool.
    odd = FramePool(4, (5, 5))  # 25-byte frames: hashed byte by byte.
    small = rng.integers(0, 256, (500, 5, 5), dtype=np.uint8)
    assert len(np.unique(odd.hash(small))) == len(np.unique(small.reshape(500, -1), axis=0))


@pytest.mark.parametrize("frame_shape", [(6, 6), (5, 5), (5, 5, 3)])
def test_gather_keeps_index_shape_dtype_and_returns_copies(frame_shape):
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (6, *frame_shape), dtype=np.uint8)
    pool = FramePool(10, frame_shape)
    entries = pool.add(batch)
    rows = entries.reshape(2, 3).astype(np.int32)
    out = pool.gather(rows)
    assert out.shape == (2, 3, *frame_shape) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, batch.reshape(2, 3, *frame_shape))
    out[:] = 0
    np.testing.assert_array_equal(pool.gather(entries), batch)


def test_add_rejects_frames_of_another_shape_or_dtype():
    pool = FramePool(4, (6, 6))
    with pytest.raises(ValueError, match="shape"):
        pool.add(np.zeros((2, 6, 5), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        pool.add(np.zeros((2, 6, 6), np.float32))
    with pytest.raises(ValueError, match="capacity"):
        FramePool(0, (6, 6))


def test_claim_then_cancel_changes_nothing_and_fits_counts_claimed_entries():
    pool = FramePool(3, (6, 6))
    held = pool.add(frames(1, 2))
    claim = pool.claim(frames(2, 3, 4))
    assert (claim.needed, claim.claimed) == (2, 1) and pool.fits(claim)
    np.testing.assert_array_equal(pool.refcount(held), [1, 2])
    pool.cancel(claim)
    np.testing.assert_array_equal(pool.refcount(held), [1, 1])
    assert not pool.fits(pool.claim(frames(2, 3, 4, 5)))  # 3 new + 1 claimed > 3 entries.


def test_freed_by_prefix_counts_entries_whose_last_reference_goes():
    pool = FramePool(8, (6, 6))
    items = np.stack([pool.add(frames(1, 2)), pool.add(frames(2, 3)), pool.add(frames(3, 4))])
    pool.add(frames(4))  # Frame 4 is held elsewhere too.
    np.testing.assert_array_equal(pool.freed_by_prefix(items), [1, 2, 3])
    np.testing.assert_array_equal(pool.freed_by_prefix(items[1:]), [0, 1])  # Frame 2 is held by item 0.


def test_state_round_trip_restores_frames_counts_and_the_index():
    pool = FramePool(6, (5, 5))
    a = pool.add(frames(1, 2, 3, 2, shape=(5, 5)))
    pool.release(a[:1])
    restored = FramePool(6, (5, 5))
    restored.set_state(pickle.loads(pickle.dumps(pool.get_state())))
    assert (restored.size, restored.num_free) == (pool.size, pool.num_free)
    np.testing.assert_array_equal(restored.gather(a[1:]), frames(2, 3, 2, shape=(5, 5)))
    for p in (pool, restored):  # Both dedupe the same way afterwards.
        again = p.add(frames(3, 7, 1, shape=(5, 5)))
        assert again[0] == a[2] and p.size == 4
    with pytest.raises(ValueError, match="pool of 6 frames"):
        FramePool(7, (5, 5)).set_state(pool.get_state())
