"""The protocol ``bench peers`` holds every framework to: medians with unsolved runs, the clock
that leaves evaluations out, fixed evaluation starts."""

from __future__ import annotations

import time

import pytest

from distrl.bench.peers import report
from distrl.bench.peers.runners import training_clock
from distrl.bench.peers.protocol import (
    PEER_TASKS, TASKS, SolveClock, eval_stream_seed, greedy_returns, median_or_none, reset_to_start,
)


@pytest.mark.parametrize(
    "values, expected",
    [([3.0, 1.0, 2.0], 2.0), ([1.0, None, 2.0], 2.0), ([None, 1.0, None], None), ([4.0, 2.0], 3.0),
     ([2.0, None], None), ([], None)],
)
def test_an_unsolved_run_counts_as_slower_than_every_solved_one(values, expected):
    assert median_or_none(values) == expected


def test_the_clock_leaves_evaluations_out_and_notes_the_first_solving_one():
    clock = SolveClock(threshold=10.0)
    clock.start()
    with clock.evaluating():
        time.sleep(0.2)
    assert clock.training_seconds() < 0.1
    assert not clock.record(100, 5.0)
    assert clock.record(200, 10.0) and not clock.record(300, 12.0)
    assert clock.solved["env_steps"] == 200 and len(clock.evaluations) == 3


def test_every_framework_meets_distrls_evaluation_start_states():
    """Episode i of an evaluation starts where distrl's evaluation environment starts its i-th
    episode: the i-th reset after one seeded with derive_seed(seed, "eval")."""
    import gymnasium as gym
    import numpy as np

    from distrl.envs import make_environment

    distrl_env = make_environment("gym:CartPole-v1", eval_stream_seed(3))
    gym_env = gym.make("CartPole-v1")
    for episode in range(3):
        first = distrl_env.reset().observation
        np.testing.assert_array_equal(first, reset_to_start(gym_env, 3, episode))
        while not distrl_env.step(0).last():
            pass
    assert eval_stream_seed(0) != eval_stream_seed(1)


def test_evaluations_repeat_for_a_run_seed():
    def policy(obs):
        return int(obs[2] > 0)

    first = greedy_returns("CartPole-v1", policy, run_seed=0)
    assert first == greedy_returns("CartPole-v1", policy, run_seed=0) and len(first) == 10


def test_the_report_gives_the_ratio_of_medians_against_the_best_peer():
    def solved(seconds):
        return {"solved": {"train_s": seconds, "env_steps": 1000}}

    results = {"dqn-cartpole": {"distrl (debug)": [solved(2.0), solved(4.0), {"solved": None}],
                                "sb3": [solved(8.0), solved(10.0), solved(12.0)]}}
    text = report(results, [0, 1, 2], TASKS)
    assert "| distrl (debug) | 2.0 s / 1,000 | 4.0 s / 1,000 | not solved | 2/3 | 4.0 |" in text
    assert "ratio of medians 0.40x" in text


def test_the_report_names_the_peers_longer_budget():
    results = {"ddpg-pendulum": {"distrl (debug)": [{"solved": None}], "tianshou": [{"solved": None}]}}
    assert "budget 20,000\n" in report(results, [0], TASKS) + "\n"
    assert "budget 20,000 (peers: 60,000, --peer-budget-factor 3)" in report(results, [0], TASKS, peer_budget_factor=3)


def test_the_distributed_clock_stops_when_the_solving_evaluations_weights_were_taken():
    records = [{"env_steps": 5000, "wall_clock_s": 4.0, "duration_s": 0.5, "return_mean": 100.0},
               {"env_steps": 10000, "wall_clock_s": 9.0, "duration_s": 2.0, "return_mean": 500.0}]
    debug = training_clock(records, "debug")
    assert [r["train_s"] for r in debug] == [3.5, 6.5]  # the single process paused 0.5 s, then 2 s more
    local = training_clock(records, "local")
    assert [r["train_s"] for r in local] == [3.5, 7.0]  # trained on through the first evaluation
    assert [r["env_steps"] for r in local] == [5000, 10000]


def test_the_report_compares_the_distributed_mode_with_the_single_process_seed_by_seed():
    def solved(seconds):
        return {"solved": {"train_s": seconds, "env_steps": 1000}}

    results = {"dqn-costly-cartpole": {"distrl (debug)": [solved(10.0), solved(12.0), solved(8.0)],
                                       "distrl (local)": [solved(9.0), {"solved": None}, solved(8.0)]}}
    text = report(results, [0, 1, 2], TASKS)
    assert "dqn on distrl.bench.costly_env:costly_cartpole" in text
    assert "distrl (local) vs distrl (debug): no slower on 2/3 seeds, ratio of medians 0.90x" in text
    assert "best peer" not in text  # the task has no peers, so there is nothing to compare with


def test_the_default_run_holds_the_tasks_with_peers():
    assert "dqn-costly-cartpole" in TASKS and "dqn-costly-cartpole" not in PEER_TASKS
    assert set(PEER_TASKS) == {"dqn-cartpole", "a2c-cartpole", "ddpg-pendulum"}


def test_the_mode_comparison_refuses_runs_of_different_seed_counts():
    solved = {"solved": {"train_s": 1.0, "env_steps": 1000}}
    results = {"dqn-cartpole": {"distrl (debug)": [solved, solved], "distrl (local)": [solved, solved, solved]}}
    with pytest.raises(ValueError, match="hold 3 and 2 seeds"):
        report(results, [0, 1, 2], TASKS)
