"""The Atari replay benchmark: transitions it makes, its measurements and its report."""

from __future__ import annotations

import numpy as np
import pytest

from distrl.bench import BENCHMARKS, replay_atari
from distrl.bench.replay_atari import Episode


def synthetic_episodes(lengths=(30, 12), seed=0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [
        Episode(rng.integers(0, 256, (n + 1, 84, 84), dtype=np.uint8), rng.integers(0, 6, n).astype(np.int64),
                rng.standard_normal(n).astype(np.float32), terminated=bool(i % 2))
        for i, n in enumerate(lengths)
    ]


def test_registered():
    assert BENCHMARKS["replay-atari"] == "distrl.bench.replay_atari"


def test_transitions_are_dqn_atari_items_with_frames_unique_per_lap():
    episodes = synthetic_episodes()
    batches = list(replay_atari.transition_batches(episodes, 200, actors=2, insert_batch=8))
    assert sum(len(b.reward) for b in batches) >= 200
    batch = batches[0]
    assert batch.observation.shape == (8, 4, 84, 84) and batch.observation.dtype == np.uint8
    assert batch.next_observation.shape == (8, 4, 84, 84)
    assert batch.action.dtype == np.int64 and batch.reward.dtype == batch.discount.dtype == np.float32
    assert batch.extras["policy_version"].dtype == np.int64
    first = batch.observation[0]  # Actor 0's first stack: the reset frame 4 times ("reset" padding).
    assert all(np.array_equal(frame, first[0]) for frame in first)
    np.testing.assert_array_equal(first[0].ravel()[4:], episodes[0].frames[0].ravel()[4:])
    observations = np.concatenate([b.observation for b in batches])
    frames = observations.reshape(-1, 84 * 84)
    marks = frames[:, :4].copy().view(np.uint32).ravel()
    assert set(marks.tolist()) >= {1, 2, 3}  # Laps of both actors.
    distinct = np.unique(frames, axis=0)
    per_lap = {mark: np.unique(frames[marks == mark], axis=0).shape[0] for mark in set(marks.tolist())}
    assert distinct.shape[0] == sum(per_lap.values())  # No frame is shared between laps.


def test_run_measures_both_layouts():
    layouts = replay_atari.run(synthetic_episodes(), size=600, actors=2, insert_batch=16, seconds=0.05,
                               rounds=1, timed_inserts=64)
    plain = next(layout for layout in layouts if layout.name == "plain")
    dedup = next(layout for layout in layouts if layout.name == "deduplicated")
    # 2 x 28,224 pixels, action 8, reward 4, discount 4, policy_version 8, removed flag 1, slot index 8.
    assert plain.bytes_per_transition == 56_481 and plain.million_bytes == 56_481 * 1_000_000
    assert plain.pool_entries_per_transition is None and dedup.pool_evictions == 0
    assert 0.9 < dedup.pool_entries_per_transition < 1.2
    assert 7.0e9 < dedup.million_bytes < replay_atari.TARGET_BYTES
    for layout in layouts:
        assert layout.insert_rate > 0 and min(layout.sample_rates.values()) > 0


def test_report_marks_the_memory_aim():
    layout = replay_atari.Layout("deduplicated", 10**9, 7_300.0, None, 7.3e9, 30_000.0, {32: 1e5, 256: 2e5}, 1.0, 0)
    lines = replay_atari.format_report([layout], 1000, "Pong", 500, 4, 16, 5, "cpu").splitlines()
    assert "frames/trans" in lines[1] and lines[2].startswith("deduplicated")
    assert lines[-1].endswith("PASS")
    over = layout._replace(million_bytes=7.6e9, pool_evictions=3)
    lines = replay_atari.format_report([over], 1000, "Pong", 500, 4, 16, 5, "cpu").splitlines()
    assert lines[-1].endswith("ABOVE AIM") and "3 items were evicted early" in lines[-2]


def test_recorded_stacks_match_the_gymnasium_wrappers():
    pytest.importorskip("ale_py")
    episodes = replay_atari.record_episodes("Pong", steps=40)  # Asserts every rebuilt stack.
    assert sum(len(e.actions) for e in episodes) == 40
    assert episodes[0].frames.shape[1:] == (84, 84) and episodes[0].frames.dtype == np.uint8


@pytest.mark.parametrize("argv", [["--size", "0"], ["--size", "8", "--insert-batch", "16"], ["--actors", "0"]])
def test_bad_options_exit_with_usage_error(argv):
    with pytest.raises(SystemExit) as error:
        replay_atari.main(argv)
    assert error.value.code == 2
