"""How often the learner publishes weights by default (``default_publish_period``, ``SamplingPlan``)."""

from __future__ import annotations

import pytest

from distrl.agents import a2c, ddpg, dqn
from distrl.experiments.distributed import DistributedConfig
from distrl.experiments.distributed.learner import (
    MIN_PUBLISH_PERIOD, PUBLISH_EVERY_ENV_STEPS, SamplingPlan, default_publish_period,
)
from distrl.utils.config import ConfigError


def test_replay_agents_publish_about_every_200_env_steps_of_data_at_their_replay_ratio():
    assert PUBLISH_EVERY_ENV_STEPS == 200
    assert default_publish_period(dqn.Builder(dqn.Config())) == 100  # 32 / 64 = 0.5 updates per env step.
    # What a run gets when DistributedConfig leaves the period to the agent.
    assert SamplingPlan.of(dqn.Builder(dqn.Config()), DistributedConfig(), is_queue=False).publish_period == 100
    assert default_publish_period(ddpg.Builder(ddpg.Config())) == 100  # 16 / 32.
    # The Ape-X config's ratio (batch 256, one update per 8 env steps): a slow learner publishes after fewer steps.
    assert default_publish_period(dqn.Builder(dqn.Config(batch_size=256, samples_per_insert=32.0))) == 25
    # So few updates per env step that 200 env steps hold less than one: no more often than every 10 updates.
    assert default_publish_period(dqn.Builder(dqn.Config(batch_size=64, samples_per_insert=0.5))) == MIN_PUBLISH_PERIOD


def test_on_policy_agents_publish_every_step_when_synchronous_and_every_25_otherwise():
    assert default_publish_period(a2c.Builder(a2c.Config())) == 1
    assert default_publish_period(a2c.Builder(a2c.Config(max_policy_lag=None))) == 25


def test_an_explicit_publish_period_wins_and_a_synchronous_agent_refuses_any_but_one():
    plan = SamplingPlan.of(dqn.Builder(dqn.Config()), DistributedConfig(publish_period=7), is_queue=False)
    assert plan.publish_period == 7
    with pytest.raises(ConfigError, match="publish_period.*synchronous"):
        SamplingPlan.of(a2c.Builder(a2c.Config()), DistributedConfig(publish_period=5), is_queue=True)


def test_an_asynchronous_agent_with_a_lag_limit_publishes_within_half_of_it_and_refuses_a_longer_period():
    """With max_policy_lag K, a learner more than K steps past the last publish drops every segment
    the actors send and so never reaches the next publish: the default stays within K // 2, and a
    longer explicit period is refused."""
    assert default_publish_period(a2c.Builder(a2c.Config(max_policy_lag=5))) == 2
    assert default_publish_period(a2c.Builder(a2c.Config(max_policy_lag=1))) == 1
    assert default_publish_period(a2c.Builder(a2c.Config(max_policy_lag=100))) == 25
    builder = a2c.Builder(a2c.Config(max_policy_lag=5))
    assert SamplingPlan.of(builder, DistributedConfig(publish_period=5), is_queue=True).publish_period == 5
    with pytest.raises(ConfigError, match="publish_period.*max_policy_lag"):
        SamplingPlan.of(builder, DistributedConfig(publish_period=6), is_queue=True)
