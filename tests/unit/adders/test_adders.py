"""Adders checked against tables of hand-built episodes and hand-computed items."""

from __future__ import annotations

import time
from typing import Any, Mapping, NamedTuple, Sequence

import dm_env
import numpy as np
import pytest

from distrl.adders import NStepTransitionAdder, TrajectoryAdder
from distrl.replay.client import ReplayClient
from distrl.types import Nest, SampleBatch, Trajectory, Transition


class RecordingClient(ReplayClient):
    """An in-memory client that keeps every inserted batch, in order."""

    def __init__(self) -> None:
        self.batches: list[Nest] = []
        self.priorities: list[np.ndarray | None] = []

    def insert(self, items: Nest, priorities: np.ndarray | None = None) -> None:
        self.batches.append(items)
        self.priorities.append(priorities)

    def sample(self, batch_size: int) -> SampleBatch:
        raise NotImplementedError

    def can_sample(self, batch_size: int) -> bool:
        return False

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        raise NotImplementedError

    def info(self) -> Mapping[str, Any]:
        return {"inserts": sum(len(b.reward) for b in self.batches)}

    def items(self) -> list[Nest]:
        """Unstacks every batch into single items (leaves lose the batch axis)."""
        out = []
        for batch in self.batches:
            fields = batch._asdict()
            for i in range(len(batch.reward)):
                out.append({k: _index(v, i) for k, v in fields.items()})
        return out


def _index(value: Nest, i: int) -> Nest:
    if isinstance(value, np.ndarray):
        return value[i]
    if isinstance(value, dict):
        return {k: _index(v, i) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_index(v, i) for v in value))
    if isinstance(value, tuple):
        return tuple(_index(v, i) for v in value)
    raise TypeError(type(value))


def obs(x: float) -> np.ndarray:
    return np.array([x], dtype=np.float32)


# An episode is (first_observation, steps); a step is (kind, reward, discount)
# with kind "mid", "term" or "trunc". Step i of an episode starting at
# observation o0 takes action 100 + o0 + i and produces observation o0 + i + 1.
class Episode(NamedTuple):
    start: int
    steps: Sequence[tuple[str, float, float]]


def timesteps(episode: Episode) -> list[tuple[int, dm_env.TimeStep]]:
    """Returns [(action, timestep)], the first with action None."""
    out: list[tuple[Any, dm_env.TimeStep]] = [(None, dm_env.restart(obs(episode.start)))]
    for i, (kind, reward, discount) in enumerate(episode.steps):
        o = obs(episode.start + i + 1)
        if kind == "mid":
            ts = dm_env.transition(reward, o, discount)
        elif kind == "term":
            ts = dm_env.termination(reward, o)
        else:
            ts = dm_env.truncation(reward, o)
        out.append((100 + episode.start + i, ts))
    return out


def run_episodes(adder: Any, episodes: Sequence[Episode], with_extras: bool = False) -> None:
    for episode in episodes:
        for action, ts in timesteps(episode):
            if action is None:
                adder.add_first(ts)
            elif with_extras:
                adder.add(action, ts, extras={"policy_version": np.int64(action - 100)})
            else:
                adder.add(action, ts)


MID, TERM, TRUNC = "mid", "term", "trunc"
THREE_TERM = Episode(0, [(MID, 1.0, 1.0), (MID, 2.0, 1.0), (TERM, 3.0, 0.0)])
THREE_TRUNC = Episode(0, [(MID, 1.0, 1.0), (MID, 2.0, 1.0), (TRUNC, 3.0, 1.0)])

# (name, n, gamma, episodes, expected [(obs, action, R, D, next_obs)]), all by hand.
NSTEP_TABLE = [
    ("n1_term", 1, 0.5, [THREE_TERM], [(0, 100, 1.0, 0.5, 1), (1, 101, 2.0, 0.5, 2), (2, 102, 3.0, 0.0, 3)]),
    ("n2_term", 2, 0.5, [THREE_TERM], [(0, 100, 2.0, 0.25, 2), (1, 101, 3.5, 0.0, 3), (2, 102, 3.0, 0.0, 3)]),
    ("n3_term", 3, 0.5, [THREE_TERM], [(0, 100, 2.75, 0.0, 3), (1, 101, 3.5, 0.0, 3), (2, 102, 3.0, 0.0, 3)]),
    ("n1_trunc", 1, 0.5, [THREE_TRUNC], [(0, 100, 1.0, 0.5, 1), (1, 101, 2.0, 0.5, 2), (2, 102, 3.0, 0.5, 3)]),
    ("n2_trunc", 2, 0.5, [THREE_TRUNC], [(0, 100, 2.0, 0.25, 2), (1, 101, 3.5, 0.25, 3), (2, 102, 3.0, 0.5, 3)]),
    ("n3_trunc", 3, 0.5, [THREE_TRUNC], [(0, 100, 2.75, 0.125, 3), (1, 101, 3.5, 0.25, 3), (2, 102, 3.0, 0.5, 3)]),
    (
        "shorter_than_n_term",
        5,
        0.5,
        [Episode(0, [(MID, 1.0, 1.0), (TERM, 2.0, 0.0)])],
        [(0, 100, 2.0, 0.0, 2), (1, 101, 2.0, 0.0, 2)],
    ),
    (
        "shorter_than_n_trunc",
        5,
        0.5,
        [Episode(0, [(MID, 1.0, 1.0), (TRUNC, 2.0, 1.0)])],
        [(0, 100, 2.0, 0.25, 2), (1, 101, 2.0, 0.5, 2)],
    ),
    ("single_step_term", 4, 0.9, [Episode(0, [(TERM, 7.0, 0.0)])], [(0, 100, 7.0, 0.0, 1)]),
    ("single_step_trunc", 4, 0.9, [Episode(0, [(TRUNC, 7.0, 1.0)])], [(0, 100, 7.0, 0.9, 1)]),
    (
        "env_discount_n2_term",
        2,
        0.5,
        [Episode(0, [(MID, 1.0, 0.9), (MID, 2.0, 1.0), (TERM, 3.0, 0.0)])],
        [(0, 100, 1.9, 0.225, 2), (1, 101, 3.5, 0.0, 3), (2, 102, 3.0, 0.0, 3)],
    ),
    (
        "env_discount_n3_trunc",
        3,
        0.5,
        [Episode(0, [(MID, 1.0, 0.9), (MID, 2.0, 1.0), (TRUNC, 3.0, 1.0)])],
        [(0, 100, 2.575, 0.1125, 3), (1, 101, 3.5, 0.25, 3), (2, 102, 3.0, 0.5, 3)],
    ),
    (
        "env_discount_zero_mid_episode",
        3,
        1.0,
        [Episode(0, [(MID, 1.0, 0.0), (MID, 2.0, 1.0), (MID, 3.0, 1.0), (TRUNC, 4.0, 1.0)])],
        [(0, 100, 1.0, 0.0, 3), (1, 101, 9.0, 1.0, 4), (2, 102, 7.0, 1.0, 4), (3, 103, 4.0, 1.0, 4)],
    ),
    (
        "gamma1_long_n2_term",
        2,
        1.0,
        [Episode(0, [(MID, 1.0, 1.0), (MID, 2.0, 1.0), (MID, 3.0, 1.0), (MID, 4.0, 1.0), (TERM, 5.0, 0.0)])],
        [
            (0, 100, 3.0, 1.0, 2),
            (1, 101, 5.0, 1.0, 3),
            (2, 102, 7.0, 1.0, 4),
            (3, 103, 9.0, 0.0, 5),
            (4, 104, 5.0, 0.0, 5),
        ],
    ),
    (
        "two_episodes_n2",
        2,
        0.5,
        [
            Episode(0, [(MID, 1.0, 1.0), (TERM, 2.0, 0.0)]),
            Episode(10, [(MID, 3.0, 1.0), (TRUNC, 4.0, 1.0)]),
        ],
        [(0, 100, 2.0, 0.0, 2), (1, 101, 2.0, 0.0, 2), (10, 110, 5.0, 0.25, 12), (11, 111, 4.0, 0.5, 12)],
    ),
    (
        "two_episodes_n3_first_short",
        3,
        0.5,
        [
            Episode(0, [(TERM, 1.0, 0.0)]),
            Episode(10, [(MID, 1.0, 1.0), (MID, 2.0, 1.0), (MID, 3.0, 1.0), (TERM, 4.0, 0.0)]),
        ],
        [
            (0, 100, 1.0, 0.0, 1),
            (10, 110, 2.75, 0.125, 13),
            (11, 111, 2.0 + 1.5 + 1.0, 0.0, 14),
            (12, 112, 5.0, 0.0, 14),
            (13, 113, 4.0, 0.0, 14),
        ],
    ),
]


@pytest.mark.parametrize(
    "n,gamma,episodes,expected", [case[1:] for case in NSTEP_TABLE], ids=[case[0] for case in NSTEP_TABLE]
)
@pytest.mark.parametrize("max_batch_size", [1, 2, 64])
def test_nstep_table(n, gamma, episodes, expected, max_batch_size):
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=n, discount=gamma, max_batch_size=max_batch_size)
    run_episodes(adder, episodes)
    adder.flush()
    items = client.items()
    assert len(items) == len(expected)
    for item, (o, a, r, d, o_next) in zip(items, expected):
        assert item["observation"] == pytest.approx([o])
        assert item["action"] == a
        assert item["reward"] == pytest.approx(r, rel=1e-6)
        assert item["discount"] == pytest.approx(d, rel=1e-6)
        assert item["next_observation"] == pytest.approx([o_next])
        assert item["extras"] == ()
    for batch in client.batches:
        assert isinstance(batch, Transition)
        assert batch.reward.dtype == np.float32 and batch.discount.dtype == np.float32
        assert batch.observation.dtype == np.float32 and batch.observation.shape[1:] == (1,)
        assert batch.extras == ()


def test_nstep_no_emission_before_n_steps():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=3, discount=0.9, max_batch_size=1)
    adder.add_first(dm_env.restart(obs(0)))
    adder.add(0, dm_env.transition(1.0, obs(1)))
    adder.add(0, dm_env.transition(1.0, obs(2)))
    assert client.batches == []
    adder.add(0, dm_env.transition(1.0, obs(3)))
    assert len(client.batches) == 1
    assert client.batches[0].next_observation[0] == pytest.approx([3.0])


def test_nstep_extras_come_from_first_step():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=3, discount=0.5)
    run_episodes(adder, [THREE_TRUNC, Episode(10, [(TERM, 1.0, 0.0)])], with_extras=True)
    adder.flush()
    (batch,) = client.batches
    np.testing.assert_array_equal(batch.extras["policy_version"], [0, 1, 2, 10])
    assert batch.extras["policy_version"].dtype == np.int64
    np.testing.assert_array_equal(batch.action, [100, 101, 102, 110])


def test_nstep_batching():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=2, discount=0.9, max_batch_size=4)
    ten = Episode(0, [(MID, 1.0, 1.0)] * 9 + [(TERM, 1.0, 0.0)])
    run_episodes(adder, [ten])
    assert [len(b.reward) for b in client.batches] == [4, 4]
    assert adder.num_buffered == 2
    adder.flush()
    assert [len(b.reward) for b in client.batches] == [4, 4, 2]
    adder.flush()
    assert len(client.batches) == 3
    np.testing.assert_array_equal(np.concatenate([b.observation[:, 0] for b in client.batches]), np.arange(10))


def test_nstep_priority_fn_gives_each_batch_its_priorities():
    client = RecordingClient()
    seen = []

    def priorities(batch: Transition) -> np.ndarray:
        seen.append(batch)
        return 1.0 + batch.observation[:, 0].astype(np.float64)  # Item i gets priority 1 + i.

    adder = NStepTransitionAdder(client, n_step=2, discount=0.9, max_batch_size=4, priority_fn=priorities)
    run_episodes(adder, [Episode(0, [(MID, 1.0, 1.0)] * 9 + [(TERM, 1.0, 0.0)])])
    adder.flush()
    assert [batch is recorded for batch, recorded in zip(seen, client.batches)] == [True, True, True]
    assert [p.dtype for p in client.priorities] == [np.float64] * 3
    np.testing.assert_array_equal(np.concatenate(client.priorities), 1.0 + np.arange(10))
    plain = RecordingClient()  # Without a priority_fn every insert leaves priorities to the table.
    run_episodes(NStepTransitionAdder(plain, n_step=1, discount=0.9, max_batch_size=1), [Episode(0, [(TERM, 1.0, 0.0)])])
    assert plain.priorities == [None]


@pytest.mark.parametrize("bad", [lambda b: -np.ones(len(b.reward)), lambda b: np.full(len(b.reward), np.nan),
                                 lambda b: np.ones(len(b.reward) + 1), lambda b: 1.0])
def test_nstep_refuses_priorities_that_cannot_be_sampled(bad):
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=1, discount=0.9, max_batch_size=2, priority_fn=bad)
    with pytest.raises(ValueError, match="priority_fn must return 2 finite priorities >= 0"):
        run_episodes(adder, [Episode(0, [(MID, 1.0, 1.0), (TERM, 1.0, 0.0)])])
    assert client.batches == []


def test_nstep_copies_observations_and_actions():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=2, discount=1.0, max_batch_size=64)
    shared_obs = np.zeros(3, dtype=np.float32)
    shared_action = np.zeros(2, dtype=np.float32)
    adder.add_first(dm_env.restart(shared_obs))
    for t in range(1, 5):
        shared_action[:] = t - 1
        shared_obs[:] = t
        adder.add(shared_action, dm_env.transition(1.0, shared_obs) if t < 4 else dm_env.truncation(1.0, shared_obs))
    shared_obs[:] = -1
    shared_action[:] = -1
    adder.flush()
    (batch,) = client.batches
    np.testing.assert_array_equal(batch.observation[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.action[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.next_observation[:, 0], [2, 3, 4, 4])


def test_nstep_nested_observations():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=1, discount=0.9)
    make = lambda x: {"pixels": np.full((2, 2), x, np.uint8), "vec": np.array([x], np.float32)}
    adder.add_first(dm_env.restart(make(0)))
    adder.add(np.int64(1), dm_env.transition(1.0, make(1)))
    adder.add(np.int64(0), dm_env.termination(1.0, make(2)))
    adder.flush()
    (batch,) = client.batches
    assert batch.observation["pixels"].shape == (2, 2, 2)
    np.testing.assert_array_equal(batch.next_observation["vec"][:, 0], [1, 2])
    np.testing.assert_array_equal(batch.discount, np.array([0.9, 0.0], np.float32))


def test_nstep_reset_and_misuse():
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=3, discount=0.5, max_batch_size=1)
    with pytest.raises(ValueError):
        adder.add(0, dm_env.transition(1.0, obs(1)))
    with pytest.raises(ValueError):
        adder.add_first(dm_env.transition(1.0, obs(1)))
    adder.add_first(dm_env.restart(obs(0)))
    adder.add(0, dm_env.transition(1.0, obs(1)))
    adder.reset()
    with pytest.raises(ValueError):
        adder.add(0, dm_env.transition(1.0, obs(2)))
    # An open episode is dropped by a new add_first: nothing spans the two.
    adder.add_first(dm_env.restart(obs(10)))
    adder.add(0, dm_env.transition(1.0, obs(11)))
    adder.add_first(dm_env.restart(obs(20)))
    adder.add(0, dm_env.termination(1.0, obs(21)))
    with pytest.raises(ValueError):
        adder.add(0, dm_env.transition(1.0, obs(22)))
    items = client.items()
    assert len(items) == 1 and items[0]["observation"] == pytest.approx([20.0])
    with pytest.raises(ValueError):
        NStepTransitionAdder(client, n_step=0, discount=0.5)
    with pytest.raises(ValueError):
        NStepTransitionAdder(client, n_step=1, discount=1.5)


# Trajectory adder.


def _segment(batch: Trajectory, b: int) -> dict[str, Any]:
    return {k: _index(v, b) for k, v in batch._asdict().items()}


def test_trajectory_segments_across_episode_boundaries():
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=3)
    episodes = [
        Episode(0, [(MID, 1.0, 1.0), (TERM, 2.0, 0.0)]),
        Episode(10, [(MID, 3.0, 1.0), (MID, 4.0, 0.9), (TRUNC, 5.0, 1.0)]),
        Episode(20, [(MID, 6.0, 1.0)]),
    ]
    run_episodes(adder, episodes, with_extras=True)
    assert len(client.batches) == 2
    first, second = (_segment(b, 0) for b in client.batches)
    np.testing.assert_array_equal(first["observation"][:, 0], [0, 1, 10])
    np.testing.assert_array_equal(first["action"], [100, 101, 110])
    np.testing.assert_array_equal(first["reward"], [1, 2, 3])
    np.testing.assert_array_equal(first["discount"], [1, 0, 1])
    np.testing.assert_array_equal(first["last"], [False, True, False])
    np.testing.assert_array_equal(first["next_observation"][:, 0], [1, 2, 11])
    np.testing.assert_array_equal(first["mask"], [True, True, True])
    np.testing.assert_array_equal(first["extras"]["policy_version"], [0, 1, 10])

    np.testing.assert_array_equal(second["observation"][:, 0], [11, 12, 20])
    np.testing.assert_array_equal(second["reward"], [4, 5, 6])
    np.testing.assert_allclose(second["discount"], [0.9, 1, 1])
    np.testing.assert_array_equal(second["last"], [False, True, False])
    np.testing.assert_array_equal(second["next_observation"][:, 0], [12, 13, 21])
    np.testing.assert_array_equal(second["extras"]["policy_version"], [11, 12, 20])
    for batch in client.batches:
        assert isinstance(batch, Trajectory)
        assert batch.observation.shape == (1, 3, 1)
        assert batch.reward.dtype == np.float32 and batch.discount.dtype == np.float32
        assert batch.last.dtype == bool and batch.mask.dtype == bool


def test_trajectory_flush_pads_partial_segment():
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=4)
    run_episodes(adder, [Episode(0, [(MID, 1.0, 1.0), (MID, 2.0, 1.0), (MID, 3.0, 1.0)])], with_extras=True)
    adder.flush()
    (batch,) = client.batches
    seg = _segment(batch, 0)
    np.testing.assert_array_equal(seg["mask"], [True, True, True, False])
    np.testing.assert_array_equal(seg["observation"][:, 0], [0, 1, 2, 0])
    np.testing.assert_array_equal(seg["next_observation"][:, 0], [1, 2, 3, 0])
    np.testing.assert_array_equal(seg["reward"], [1, 2, 3, 0])
    np.testing.assert_array_equal(seg["discount"], [1, 1, 1, 0])
    np.testing.assert_array_equal(seg["last"], [False, False, False, False])
    np.testing.assert_array_equal(seg["extras"]["policy_version"], [0, 1, 2, 0])
    # The stream goes on after a flush: the next segment starts at the next step.
    adder.add(103, dm_env.termination(4.0, obs(4)))
    adder.flush()
    assert len(client.batches) == 2
    seg = _segment(client.batches[1], 0)
    np.testing.assert_array_equal(seg["observation"][:, 0], [3, 0, 0, 0])
    np.testing.assert_array_equal(seg["last"], [True, False, False, False])
    np.testing.assert_array_equal(seg["mask"], [True, False, False, False])
    adder.flush()
    assert len(client.batches) == 2


def test_trajectory_batching():
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=2, max_batch_size=3)
    run_episodes(adder, [Episode(0, [(MID, 1.0, 1.0)] * 6 + [(TERM, 1.0, 0.0)])])
    assert len(client.batches) == 1
    assert client.batches[0].observation.shape == (3, 2, 1)
    np.testing.assert_array_equal(client.batches[0].observation[:, :, 0], [[0, 1], [2, 3], [4, 5]])
    adder.flush()
    assert len(client.batches) == 2
    tail = client.batches[1]
    assert tail.observation.shape == (1, 2, 1)
    np.testing.assert_array_equal(tail.mask, [[True, False]])
    np.testing.assert_array_equal(tail.last, [[True, False]])


def test_trajectory_reset_drops_open_episode_only():
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=4)
    run_episodes(adder, [Episode(0, [(MID, 1.0, 1.0), (TERM, 2.0, 0.0)])])
    adder.add_first(dm_env.restart(obs(10)))
    adder.add(110, dm_env.transition(3.0, obs(11)))
    adder.reset()
    with pytest.raises(ValueError):
        adder.add(0, dm_env.transition(1.0, obs(12)))
    run_episodes(adder, [Episode(20, [(MID, 4.0, 1.0), (MID, 5.0, 1.0)])])
    (batch,) = client.batches
    seg = _segment(batch, 0)
    np.testing.assert_array_equal(seg["observation"][:, 0], [0, 1, 20, 21])
    np.testing.assert_array_equal(seg["last"], [False, True, False, False])


def test_trajectory_copies_observations():
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=3)
    shared = np.zeros(2, np.float32)
    adder.add_first(dm_env.restart(shared))
    for t in range(1, 4):
        shared[:] = t
        adder.add(0, dm_env.transition(0.0, shared))
    seg = _segment(client.batches[0], 0)
    np.testing.assert_array_equal(seg["observation"][:, 0], [0, 1, 2])
    np.testing.assert_array_equal(seg["next_observation"][:, 0], [1, 2, 3])


def _gae(seg: Mapping[str, np.ndarray], values: np.ndarray, next_values: np.ndarray, gamma: float, lam: float):
    """GAE exactly as the trajectory module's docstring states it."""
    T = len(seg["reward"])
    adv = np.zeros(T)
    next_adv = 0.0
    for t in reversed(range(T)):
        next_mask = seg["mask"][t + 1] if t + 1 < T else False
        delta = seg["reward"][t] + gamma * seg["discount"][t] * next_values[t] - values[t]
        adv[t] = delta + gamma * lam * seg["discount"][t] * (1 - seg["last"][t]) * next_mask * next_adv
        next_adv = adv[t]
    return adv


def test_trajectory_supports_gae_bootstrap_cases():
    """With V(o) = o, check the three bootstrapping cases by hand (gamma 0.5, lambda 1)."""
    client = RecordingClient()
    adder = TrajectoryAdder(client, sequence_length=5)
    run_episodes(
        adder,
        [
            Episode(0, [(TERM, 1.0, 0.0)]),
            Episode(10, [(TRUNC, 1.0, 1.0)]),
            Episode(20, [(MID, 1.0, 1.0), (MID, 1.0, 1.0)]),
        ],
    )
    adder.flush()
    seg = _segment(client.batches[0], 0)
    adv = _gae(seg, seg["observation"][:, 0], seg["next_observation"][:, 0], gamma=0.5, lam=1.0)
    # Terminated: 1 - V(0). Truncated: 1 + 0.5 * V(11) - V(10).
    # Unfinished: delta_3 = 1 + 0.5 * 21 - 20, delta_4 = 1 + 0.5 * 22 - 21 bootstraps from obs 22.
    expected = [1.0, 1.0 + 5.5 - 10.0, (1.0 + 10.5 - 20.0) + 0.5 * (1.0 + 11.0 - 21.0), 1.0 + 11.0 - 21.0, 0.0]
    np.testing.assert_allclose(adv[:4], expected[:4])
    assert not seg["mask"][4]


def test_nstep_throughput_cartpole_shaped(capsys):
    """Not an assertion on speed: prints adds/s for CartPole-shaped steps."""
    client = RecordingClient()
    adder = NStepTransitionAdder(client, n_step=3, discount=0.99, max_batch_size=64)
    rng = np.random.default_rng(0)
    observations = rng.standard_normal((200, 4)).astype(np.float32)
    num_steps = 20_000
    steps = []
    for t in range(num_steps):
        o = observations[t % 200]
        ts = dm_env.termination(1.0, o) if t % 200 == 199 else dm_env.transition(1.0, o)
        steps.append((np.int64(t % 2), ts, {"policy_version": np.int64(t)}))
    start = time.perf_counter()
    adder.add_first(dm_env.restart(observations[0]))
    for action, ts, extras in steps:
        adder.add(action, ts, extras)
        if ts.last():
            adder.add_first(dm_env.restart(observations[0]))
    adder.flush()
    elapsed = time.perf_counter() - start
    assert sum(len(b.reward) for b in client.batches) == num_steps
    with capsys.disabled():
        print(f"\nNStepTransitionAdder: {num_steps / elapsed:,.0f} adds/s (n=3, CartPole-shaped, batch 64)")
