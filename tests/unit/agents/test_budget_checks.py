"""``Builder.check_budget``: settings under which an agent cannot learn in the run's budget are
refused before training, with an error naming the fields; workable settings pass."""

from __future__ import annotations

import pytest

from distrl.agents import a2c, ddpg, dqn
from distrl.utils.config import ConfigError


def builder(agent, num_actors: int = 1, **fields):
    return agent.Builder(agent.Config(**fields)).with_num_actors(num_actors)


@pytest.mark.parametrize(
    "agent, fields, max_env_steps, named",
    [
        # A warm-up as long as the run: no update ever.
        (dqn, {}, 1_000, "min_replay_size"),
        (ddpg, {"min_replay_size": 5_000}, 4_000, "min_replay_size"),
        # A replay ratio too low for one update after the warm-up.
        (dqn, {"samples_per_insert": 0.01}, 2_000, "samples_per_insert"),
        (ddpg, {"samples_per_insert": 0.01}, 3_000, "samples_per_insert"),
        # A target period longer than the run: the target net keeps its random weights.
        (dqn, {"target_update_period": 600}, 2_000, "target_update_period"),
        # A standardised batch of one advantage is 0: the policy loss is 0 at every update.
        (a2c, {"normalize_advantages": True, "envs_per_actor": 1, "sequence_length": 1}, 10_000,
         "normalize_advantages"),
        # Not one learner batch in the budget.
        (a2c, {}, 10, "sequence_length"),
    ],
)
def test_settings_that_cannot_learn_in_the_budget_are_refused(agent, fields, max_env_steps, named):
    with pytest.raises(ConfigError, match=named):
        builder(agent, **fields).check_budget(max_env_steps)


@pytest.mark.parametrize(
    "agent, fields, max_env_steps",
    [
        (dqn, {}, 20_000),
        (dqn, {"target_update_period": 500}, 2_000),  # exactly the 500 updates the run makes
        (ddpg, {}, 20_000),
        (a2c, {}, 10_000),
        (a2c, {"normalize_advantages": True, "envs_per_actor": 1, "sequence_length": 5}, 10_000),
    ],
)
def test_workable_settings_pass(agent, fields, max_env_steps):
    builder(agent, **fields).check_budget(max_env_steps)


def test_a2c_batch_of_one_advantage_is_fine_once_several_actors_fill_the_batch():
    fields = {"normalize_advantages": True, "envs_per_actor": 1, "sequence_length": 1}
    with pytest.raises(ConfigError, match="envs_per_actor 1, sequence_length 1"):
        builder(a2c, num_actors=1, **fields).check_budget(10_000)
    builder(a2c, num_actors=2, **fields).check_budget(10_000)


def test_the_off_policy_update_count_follows_the_replay_ratio():
    # (2000 - 1000) env steps after the warm-up x 32 samples per insert / batches of 64.
    assert builder(dqn).expected_updates(2_000) == 500
    assert builder(ddpg).expected_updates(2_000) == 500  # DDPG: 16 / 32
    assert builder(dqn).expected_updates(900) == 0
