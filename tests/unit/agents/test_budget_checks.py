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
        (dqn, {"target_update_period": 550}, 2_000),  # exactly the 550 updates the run makes
        (ddpg, {"samples_per_insert": 0.01}, 3_000),  # the limiter's error buffer still admits 2 batches
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


def test_the_off_policy_update_count_follows_the_rate_limiter():
    # ((2000 - 1000) env steps after the warm-up x 32 samples per insert + the error buffer of
    # 0.1 x 32 x 1000 samples) / batches of 64.
    assert builder(dqn).expected_updates(2_000) == 550
    assert builder(ddpg).expected_updates(2_000) == 550  # DDPG: (1000 x 16 + 1600) / 32
    assert builder(dqn).expected_updates(1_000) == 0


def test_the_update_count_matches_a_single_process_run(tmp_path):
    """What the check assumes is what a run does: a debug-mode DQN run of 2,000 env steps makes
    at most the predicted updates, and all but the last adder batch's worth."""
    from distrl.experiments import make_experiment_config, run_local

    config = make_experiment_config("dqn", "gym:CartPole-v1", max_env_steps=2_000, eval_every=2_000,
                                    eval_episodes=1, run_dir=str(tmp_path), progress=False,
                                    agent_overrides=["hidden_sizes=16,16"])
    predicted = config.builder.expected_updates(2_000)
    made = run_local(config)["learner_steps"]
    slack = (config.agent_config.adder_batch_size + config.agent_config.n_step) * 32 // 64 + 1
    assert predicted - slack <= made <= predicted, (made, predicted)
