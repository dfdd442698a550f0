"""``VectorNStepTransitionAdder``: the transitions of N per-environment ``NStepTransitionAdder``s,
formed a block at a time, for environments stepped in lockstep."""

from __future__ import annotations

from typing import Any

import dm_env
import numpy as np
import pytest

from distrl.adders import NStepTransitionAdder
from distrl.adders.vector_nstep import VectorNStepTransitionAdder
from distrl.types import Transition


class RecordingClient:
    """Keeps every inserted batch and its priorities (the adders call only ``insert``)."""

    def __init__(self) -> None:
        self.batches: list[Transition] = []
        self.priorities: list[np.ndarray | None] = []

    def insert(self, items: Transition, priorities: np.ndarray | None = None) -> None:
        self.batches.append(items)
        self.priorities.append(priorities)


def _items(client: RecordingClient) -> list[tuple]:
    """Every inserted transition as a hashable tuple, sorted (the two adders order items differently)."""
    out = []
    for batch in client.batches:
        for i in range(len(batch.reward)):
            out.append((tuple(batch.observation[i].tolist()), int(batch.action[i]), round(float(batch.reward[i]), 5),
                        round(float(batch.discount[i]), 5), tuple(batch.next_observation[i].tolist()),
                        int(batch.extras["policy_version"][i])))
    return sorted(out)


def _step(rng: np.random.Generator) -> dm_env.TimeStep:
    observation = rng.integers(0, 1000, size=2).astype(np.float32)
    reward, draw = float(rng.integers(-3, 4)), rng.random()
    if draw < 0.05:
        return dm_env.termination(reward, observation)
    if draw < 0.1:
        return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation, discount=float(rng.choice([1.0, 0.5])))


@pytest.mark.parametrize("n_step", [1, 2, 3, 5])
@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_it_writes_what_one_nstep_adder_per_environment_writes(n_step, num_envs):
    """Random lockstep episodes with terminations, truncations, environment discounts, flushes in
    the middle of the stream and episodes restarted before their end (as after an environment
    rebuild): the same multiset of transitions as N ``NStepTransitionAdder``s."""
    rng = np.random.default_rng(n_step * 10 + num_envs)
    reference, vectorised = RecordingClient(), RecordingClient()
    singles = [NStepTransitionAdder(reference, n_step, 0.9, max_batch_size=5) for _ in range(num_envs)]
    adder = VectorNStepTransitionAdder(vectorised, num_envs, n_step, 0.9, steps_per_insert=4)
    lanes = adder.lanes()

    def start(env: int) -> None:
        first = dm_env.restart(rng.integers(0, 1000, size=2).astype(np.float32))
        singles[env].add_first(first)
        lanes[env].add_first(first)

    for env in range(num_envs):
        start(env)
    for step in range(600):
        extras = {"policy_version": np.int64(step)}
        ended = []
        for env in range(num_envs):
            action, timestep = np.int64(rng.integers(4)), _step(rng)
            singles[env].add(action, timestep, extras=extras)
            lanes[env].add(action, timestep, extras=extras)
            if timestep.last():
                ended.append(env)
        for env in ended:
            start(env)
        if rng.random() < 0.03:
            for single in singles:
                single.flush()
            adder.flush()
        if rng.random() < 0.02:
            start(int(rng.integers(num_envs)))  # Drops that environment's open episode.
    for single in singles:
        single.flush()
    adder.flush()
    assert len(_items(vectorised)) > 500 * num_envs
    assert _items(vectorised) == _items(reference)


def test_each_insert_carries_n_envs_times_steps_per_insert_transitions():
    client = RecordingClient()
    lanes = VectorNStepTransitionAdder(client, num_envs=3, n_step=2, discount=0.9, steps_per_insert=4).lanes()
    for env, lane in enumerate(lanes):
        lane.add_first(dm_env.restart(np.full(2, env, np.float32)))
    for step in range(1, 21):
        for env, lane in enumerate(lanes):
            lane.add(np.int64(step), dm_env.transition(1.0, np.full(2, 10 * step + env, np.float32)), {"v": np.int64(0)})
    # A block of 4 starts needs 4 + n - 1 = 5 recorded steps; 20 steps make 4 blocks.
    assert [len(batch.reward) for batch in client.batches] == [12] * 4
    first = client.batches[0]
    np.testing.assert_array_equal(first.observation[:3, 0], [0, 1, 2])  # Step 1 of each environment.
    np.testing.assert_array_equal(first.next_observation[:3, 0], [20, 21, 22])  # Two steps on.
    np.testing.assert_allclose(first.reward, 1.9)
    np.testing.assert_allclose(first.discount, 0.81)
    assert first.reward.dtype == first.discount.dtype == np.float32 and first.action.dtype == np.int64
    lanes[0].flush()  # Any lane flushes the whole adder: the complete windows of steps 17-19.
    assert len(client.batches[-1].reward) == 9


def test_nested_observations_and_array_actions_keep_their_shapes_and_dtypes():
    client = RecordingClient()
    lanes = VectorNStepTransitionAdder(client, num_envs=2, n_step=1, discount=0.99, steps_per_insert=2).lanes()

    def observation(x: float) -> dict:
        return {"image": np.full((3, 4), x, np.uint8), "state": np.array([x, -x], np.float64)}

    for env, lane in enumerate(lanes):
        lane.add_first(dm_env.restart(observation(env)))
    for step in range(1, 3):
        for env, lane in enumerate(lanes):
            lane.add(np.array([0.5 * step, env], np.float32), dm_env.transition(0.0, observation(10 * step + env)))
    (batch,) = client.batches
    assert batch.observation["image"].shape == (4, 3, 4) and batch.observation["image"].dtype == np.uint8
    assert batch.observation["state"].dtype == np.float64 and batch.action.shape == (4, 2)
    assert batch.action.dtype == np.float32 and batch.extras == ()
    np.testing.assert_array_equal(batch.next_observation["state"][:, 0], [10, 11, 20, 21])


def test_observations_and_actions_are_copied_when_they_arrive():
    client = RecordingClient()
    (lane,) = VectorNStepTransitionAdder(client, num_envs=1, n_step=2, discount=1.0, steps_per_insert=8).lanes()
    shared_observation, shared_action = np.zeros(3, np.float32), np.zeros(2, np.float32)
    lane.add_first(dm_env.restart(shared_observation))
    for step in range(1, 5):
        shared_action[:] = step - 1
        shared_observation[:] = step
        lane.add(shared_action, dm_env.transition(1.0, shared_observation) if step < 4
                 else dm_env.truncation(1.0, shared_observation))
    shared_observation[:] = -1
    shared_action[:] = -1
    lane.flush()
    (batch,) = client.batches
    np.testing.assert_array_equal(batch.observation[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.action[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(batch.next_observation[:, 0], [2, 3, 4, 4])


def test_priority_fn_gives_each_block_its_priorities_and_bad_ones_are_refused():
    client = RecordingClient()
    seen: list[Transition] = []

    def priorities(batch: Transition) -> np.ndarray:
        seen.append(batch)
        return 1.0 + batch.observation[:, 0].astype(np.float64)

    lanes = VectorNStepTransitionAdder(client, 2, 1, 0.9, steps_per_insert=2, priority_fn=priorities).lanes()
    for lane in lanes:
        lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    for step in range(2):
        for lane in lanes:
            lane.add(np.int64(0), dm_env.transition(0.0, np.full(1, step + 1, np.float32)))
    assert seen[0] is client.batches[0]
    np.testing.assert_array_equal(client.priorities[0], [1, 1, 2, 2])
    bad = VectorNStepTransitionAdder(RecordingClient(), 1, 1, 0.9, 1, priority_fn=lambda b: -np.ones(len(b.reward)))
    (lane,) = bad.lanes()
    lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    with pytest.raises(ValueError, match="VectorNStepTransitionAdder: priority_fn must return 1 finite priorities"):
        lane.add(np.int64(0), dm_env.transition(0.0, np.zeros(1, np.float32)))


def test_lanes_must_step_in_lockstep_and_within_an_episode():
    adder = VectorNStepTransitionAdder(RecordingClient(), 2, 2, 0.9, steps_per_insert=3)
    lanes = adder.lanes()
    step: Any = dm_env.transition(0.0, np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="environment 0 without an open episode"):
        lanes[0].add(np.int64(0), step)
    with pytest.raises(ValueError, match="needs a FIRST timestep"):
        lanes[0].add_first(step)
    for lane in lanes:
        lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    lanes[0].add(np.int64(0), step)
    with pytest.raises(ValueError, match="environment 0 added twice in one vector step"):
        lanes[0].add(np.int64(0), step)
    with pytest.raises(ValueError, match="use add_first"):
        lanes[1].add(np.int64(0), dm_env.restart(np.zeros(1, np.float32)))
    for bad in (dict(num_envs=0), dict(n_step=0), dict(discount=1.5), dict(steps_per_insert=0)):
        arguments = dict(num_envs=2, n_step=2, discount=0.9, steps_per_insert=3) | bad
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
            VectorNStepTransitionAdder(RecordingClient(), **arguments)


def test_a_restart_in_the_middle_of_a_vector_step_drops_that_step_and_goes_on():
    """An environment that raises mid-step makes the env actor rebuild every environment: lanes
    that had added the interrupted step restart, and the stream continues without a lockstep error."""
    client = RecordingClient()
    lanes = VectorNStepTransitionAdder(client, 3, 1, 0.9, steps_per_insert=2).lanes()
    for lane in lanes:
        lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    lanes[0].add(np.int64(7), dm_env.transition(1.0, np.ones(1, np.float32)))  # Then environment 2 raised.
    lanes[1].add(np.int64(7), dm_env.termination(1.0, np.ones(1, np.float32)))
    for lane in lanes:
        lane.add_first(dm_env.restart(np.full(1, 5, np.float32)))
    for step in range(2):
        for lane in lanes:
            lane.add(np.int64(step), dm_env.transition(1.0, np.full(1, 6 + step, np.float32)))
    (batch,) = client.batches
    assert 7 not in batch.action.tolist() and len(batch.reward) == 6
    np.testing.assert_array_equal(batch.observation[:3, 0], [5, 5, 5])


def test_an_extras_object_reused_and_changed_between_steps_is_read_afresh():
    client = RecordingClient()
    lanes = VectorNStepTransitionAdder(client, 2, 1, 0.9, steps_per_insert=2).lanes()
    for lane in lanes:
        lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    extras = {"policy_version": np.int64(0)}
    for step in range(2):
        for env, lane in enumerate(lanes):
            extras["policy_version"] = np.int64(10 * step + env)  # The same dict, a new value.
            lane.add(np.int64(0), dm_env.transition(0.0, np.zeros(1, np.float32)), extras)
    np.testing.assert_array_equal(client.batches[0].extras["policy_version"], [0, 1, 10, 11])


def test_an_insert_that_raises_loses_its_block_but_later_transitions_stay_right():
    class FailingOnce(RecordingClient):
        def insert(self, items, priorities=None):
            if not hasattr(self, "failed"):
                self.failed = True
                raise TimeoutError("the replay server did not answer")
            super().insert(items, priorities)

    client = FailingOnce()
    lanes = VectorNStepTransitionAdder(client, 2, 2, 1.0, steps_per_insert=3).lanes()
    for lane in lanes:
        lane.add_first(dm_env.restart(np.zeros(1, np.float32)))
    for step in range(1, 16):
        try:
            for lane in lanes:
                lane.add(np.int64(step - 1), dm_env.transition(1.0, np.full(1, step, np.float32)))
        except TimeoutError:
            assert step == 4  # The first block: 3 starts need 3 + 1 recorded steps.
    batch = Transition(*(np.concatenate(leaves) for leaves in zip(*client.batches)))
    assert len(batch.reward) == 3 * 6  # Blocks at steps 7, 10 and 13, 3 steps x 2 environments each.
    np.testing.assert_array_equal(batch.observation[:, 0], batch.action)  # Step t acts on observation t,
    np.testing.assert_array_equal(batch.next_observation[:, 0], batch.action + 2)  # and lands 2 steps on.
    np.testing.assert_allclose(batch.reward, 2.0)
