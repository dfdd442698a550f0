"""Tests for the tutorial GridWorld: layouts, rewards, discounts, observations, BFS."""

from __future__ import annotations

import dm_env
import numpy as np
import pytest
from dm_env import specs

from distrl.envs.gridworld import (
    TASKS,
    GridWorld,
    ObservationType,
    parse_map,
    shortest_path_lengths,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def greedy_action(env: GridWorld) -> int:
    """The action that moves one step closer to the goal (by BFS distance)."""
    distances = env.distances_to_goal()
    y, x = env.state
    best, best_distance = None, None
    for action, (dy, dx) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
        d = distances[y + dy, x + dx]
        if d >= 0 and (best_distance is None or d < best_distance):
            best, best_distance = action, d
    return best


def test_layouts_match_the_tutorial():
    simple = GridWorld.from_task("simple")
    obstacle = GridWorld.from_task("obstacle")
    for env in (simple, obstacle):
        assert env.layout.shape == (9, 10)
        assert set(np.unique(env.layout)) == {-1, 0}
        border = np.concatenate(
            [env.layout[0], env.layout[-1], env.layout[:, 0], env.layout[:, -1]]
        )
        assert (border == -1).all()
        assert env.start_state == (2, 2)
    assert simple.goal_state == (7, 2) and obstacle.goal_state == (2, 8)

    def interior_walls(env):
        return {tuple(c) for c in np.argwhere(env.layout[1:-1, 1:-1] == -1) + 1}

    assert interior_walls(simple) == {(y, x) for y in (2, 3, 4) for x in (4, 5)}
    assert interior_walls(obstacle) == {(1, 6), (2, 4), (3, 4), (3, 5), (4, 4), (4, 5)}
    assert not simple.layout.flags.writeable
    assert simple.reward_threshold is None


def test_specs():
    env = GridWorld.from_task("simple")
    assert env.action_spec() == specs.DiscreteArray(4, np.int64, "action")
    assert env.reward_spec() == specs.Array((), np.float32, "reward")
    discount = env.discount_spec()
    assert discount.dtype == np.float32 and discount.minimum == 0.0
    assert discount.maximum == np.float32(0.9)


def test_free_move_wall_penalty_and_discount():
    env = GridWorld.from_task("simple")
    env.reset()
    ts = env.step(np.int64(RIGHT))
    assert ts.mid() and ts.reward == 0.0 and ts.discount == np.float32(0.9)
    assert env.state == (2, 3)
    ts = env.step(np.int64(RIGHT))  # (2, 4) is a wall: penalty, the agent stays
    assert ts.mid() and ts.reward == -5.0 and ts.discount == np.float32(0.9)
    assert env.state == (2, 3)
    env.set_state(x=1, y=1)
    assert env.step(UP).reward == -5.0 and env.state == (1, 1)
    assert env.step(LEFT).reward == -5.0 and env.state == (1, 1)


def test_goal_terminates_with_reward_and_zero_discount_then_restarts():
    env = GridWorld.from_task("simple", observation_type=ObservationType.AGENT_GOAL_POS)
    env.reset()
    env.set_state(x=2, y=6)
    ts = env.step(DOWN)
    assert ts.last() and ts.reward == 10.0 and ts.discount == 0.0
    np.testing.assert_array_equal(ts.observation, [7, 2, 7, 2])  # the agent stands on the goal
    first = env.step(UP)  # after LAST, step starts a new episode and ignores the action
    assert first.first() and first.reward is None and first.discount is None
    assert env.state == env.start_state


def test_step_on_fresh_env_starts_an_episode_and_bad_inputs_raise():
    env = GridWorld.from_task("obstacle")
    assert env.step(LEFT).first() and env.state == (2, 2)
    with pytest.raises(ValueError, match="invalid gridworld action 4"):
        env.step(4)
    with pytest.raises(TypeError):
        env.step(1.0)
    with pytest.raises(ValueError, match="not a free cell"):
        env.set_state(x=4, y=2)
    with pytest.raises(ValueError, match="unknown gridworld task"):
        GridWorld.from_task("maze")


def test_truncation_keeps_the_usual_discount():
    env = GridWorld.from_task("simple", max_episode_len=3)
    env.reset()
    assert env.step(UP).mid() and env.step(UP).mid()
    ts = env.step(UP)
    assert ts.last() and ts.discount == np.float32(0.9) and ts.reward == -5.0
    assert env.step(UP).first()
    # Reaching the goal on the final allowed step is a termination (discount 0).
    env = GridWorld.from_task("simple", max_episode_len=1)
    env.reset()
    env.set_state(x=2, y=6)
    ts = env.step(DOWN)
    assert ts.last() and ts.discount == 0.0 and ts.reward == 10.0


def test_bfs_distances_on_a_small_map():
    walls = parse_map(["#####", "#..##", "#.#.#", "#...#", "#####"])
    distances = shortest_path_lengths(walls, (1, 1))
    expected = np.array(
        [
            [-1, -1, -1, -1, -1],
            [-1, 0, 1, -1, -1],
            [-1, 1, -1, 5, -1],
            [-1, 2, 3, 4, -1],
            [-1, -1, -1, -1, -1],
        ]
    )
    np.testing.assert_array_equal(distances, expected)
    isolated = parse_map(["#.#", "###", "#.#"])
    assert shortest_path_lengths(isolated, (0, 1))[2, 1] == -1


@pytest.mark.parametrize("task, length", [("simple", 5), ("obstacle", 8)])
def test_shortest_path_lengths_of_the_tasks(task, length):
    assert GridWorld.from_task(task).shortest_path_length() == length


@pytest.mark.parametrize(
    "task, seed", [("simple", 0), ("obstacle", 0), ("random_goal", 1), ("random_goal", 2)]
)
def test_greedy_policy_reaches_goal_on_a_shortest_path(task, seed):
    env = GridWorld.from_task(task, max_episode_len=200, seed=seed)
    for _ in range(3):
        ts = env.reset()
        shortest = env.shortest_path_length()
        steps, episode_return = 0, 0.0
        while not ts.last():
            ts = env.step(greedy_action(env))
            steps += 1
            episode_return += float(ts.reward)
        assert steps == shortest
        assert episode_return == 10.0 and ts.discount == 0.0


def test_random_goal_is_seeded_valid_and_redrawn_each_episode():
    def goals(seed, episodes=12):
        env = GridWorld.from_task("random_goal", seed=seed)
        result = []
        for _ in range(episodes):
            env.reset()
            result.append(env.goal_state)
        return result, env

    a, env = goals(3)
    b, _ = goals(3)
    c, _ = goals(4)
    assert a == b and a != c
    assert len(set(a)) > 1
    for goal in a:
        assert goal != env.start_state and env.layout[goal] == 0


@pytest.mark.parametrize("observation_type", list(ObservationType))
def test_observations_match_specs(observation_type):
    env = GridWorld.from_task(
        "obstacle", observation_type=observation_type, max_episode_len=30, seed=0
    )
    spec = env.observation_spec()
    rng = np.random.default_rng(0)
    ts = env.reset()
    while True:
        spec.validate(ts.observation)
        if not ts.first():
            env.reward_spec().validate(ts.reward)
            env.discount_spec().validate(ts.discount)
        if ts.last():
            break
        ts = env.step(rng.integers(4))


def test_observation_contents():
    def first_observation(kind):
        return GridWorld.from_task("simple", observation_type=kind).reset().observation

    index = first_observation(ObservationType.STATE_INDEX)
    assert index.shape == () and index.dtype == np.int64 and int(index) == 2 * 10 + 2
    assert GridWorld.from_task("simple").observation_spec().num_values == 90

    onehot = first_observation(ObservationType.AGENT_ONEHOT)
    assert onehot.shape == (9, 10) and onehot.dtype == np.float32
    assert onehot[2, 2] == 1.0 and onehot.sum() == 1.0

    grid = first_observation(ObservationType.GRID)
    assert grid.shape == (3, 9, 10) and grid.dtype == np.float32
    env = GridWorld.from_task("simple")
    np.testing.assert_array_equal(grid[0], env.walls)
    assert grid[1, 2, 2] == 1.0 and grid[1].sum() == 1.0
    assert grid[2, 7, 2] == 1.0 and grid[2].sum() == 1.0

    pos = first_observation(ObservationType.AGENT_GOAL_POS)
    assert pos.dtype == np.float32
    np.testing.assert_array_equal(pos, [2, 2, 7, 2])


def test_observations_are_fresh_arrays():
    env = GridWorld.from_task("simple", observation_type=ObservationType.AGENT_ONEHOT)
    first = env.reset().observation
    env.step(RIGHT)
    assert first[2, 2] == 1.0 and first.sum() == 1.0


def test_custom_layout_validation():
    walls = parse_map(["#####", "#...#", "#####"])
    with pytest.raises(ValueError, match="equals start_state"):
        GridWorld(walls, start_state=(1, 1), goal_state=(1, 1))
    with pytest.raises(ValueError, match="not a free cell"):
        GridWorld(walls, start_state=(0, 0), goal_state=(1, 1))
    with pytest.raises(ValueError, match="unreachable"):
        GridWorld(parse_map(["#.#.#"]), start_state=(0, 1), goal_state=(0, 3))
    with pytest.raises(ValueError, match="unknown map characters"):
        parse_map(["#S#"])
    assert set(TASKS) == {"simple", "obstacle", "random_goal"}
    # Cells outside the grid count as walls.
    env = GridWorld(parse_map(["..."]), start_state=(0, 0), goal_state=(0, 2))
    env.reset()
    assert env.step(UP).reward == -5.0 and env.step(LEFT).reward == -5.0
    assert env.step(RIGHT).mid() and env.step(RIGHT).last()
    assert isinstance(env.step(0), dm_env.TimeStep)
