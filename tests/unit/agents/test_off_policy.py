"""What DQN and DDPG share: the replay fields of ``OffPolicyConfig`` and ``OffPolicyBuilder``'s parts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from distrl.adders import NStepTransitionAdder
from distrl.agents import ddpg, dqn
from distrl.agents.off_policy import REPLAY_TABLE, OffPolicyConfig
from distrl.envs.fakes import ContinuousFake, FakeEnvironment
from distrl.replay.client import LocalReplayClient
from distrl.replay.rate_limiters import SampleToInsertRatio
from distrl.replay.samplers import PrioritizedSampler, UniformSampler
from distrl.specs import make_environment_spec
from distrl.utils.config import ConfigError, field_docs

REPLAY_FIELDS = {f.name for f in dataclasses.fields(OffPolicyConfig)}


@pytest.mark.parametrize("config_class", [dqn.Config, ddpg.Config])
def test_agent_configs_have_the_replay_fields_with_the_same_docs(config_class):
    docs = field_docs(config_class)
    assert REPLAY_FIELDS <= set(docs)
    for name in REPLAY_FIELDS:
        assert docs[name] == field_docs(OffPolicyConfig)[name], name
    assert all(docs.values()), [name for name, text in docs.items() if not text]


def test_ddpg_keeps_its_tuned_replay_defaults():
    assert (ddpg.Config().batch_size, ddpg.Config().samples_per_insert) == (32, 16.0)
    assert (dqn.Config().batch_size, dqn.Config().samples_per_insert) == (64, 32.0)


@pytest.mark.parametrize("config_class", [dqn.Config, ddpg.Config])
@pytest.mark.parametrize(
    "field, value, message",
    [("min_replay_size", 10, "be >= batch_size"), ("max_replay_size", 10, "be <= max_replay_size"),
     ("samples_per_insert", 0.0, "be a finite number > 0"), ("samples_per_insert", float("inf"), "be a finite"),
     ("discount", 1.5, "lie in \\[0, 1\\]"),
     ("samples_per_insert_tolerance", -0.1, "be a finite number >= 0"), ("n_step", 0, "be a finite number > 0")],
)
def test_replay_fields_are_validated_once_for_every_agent(config_class, field, value, message):
    overrides = {"batch_size": 32, "min_replay_size": 100, field: value}
    if field == "max_replay_size":
        field = "min_replay_size"
    with pytest.raises(ConfigError, match=f"Config.{field} must {message}"):
        config_class(**overrides)


@pytest.mark.parametrize(
    "agent, env, overrides, sampler",
    [(dqn, FakeEnvironment(5, obs_shape=(3,)), {}, UniformSampler),
     (dqn, FakeEnvironment(5, obs_shape=(3,)), {"prioritized": True}, PrioritizedSampler),
     (ddpg, ContinuousFake(5, obs_shape=(3,)), {}, UniformSampler)],
)
def test_builders_make_one_ratio_limited_table_and_an_nstep_adder(agent, env, overrides, sampler):
    config = agent.Config(batch_size=8, min_replay_size=8, n_step=2, adder_batch_size=4, **overrides)
    builder = agent.Builder(config)
    (table,) = builder.make_replay_tables(make_environment_spec(env), seed=0)
    assert table.name == REPLAY_TABLE and isinstance(table.sampler, sampler)
    assert isinstance(table.rate_limiter, SampleToInsertRatio)
    adder = builder.make_adder(LocalReplayClient(table))
    assert isinstance(adder, NStepTransitionAdder) and adder.n_step == 2


def test_actor_modules_must_match_variable_names():
    class Misnamed(dqn.Builder):
        variable_names = ("policy",)

    config = dqn.Config(batch_size=8, min_replay_size=8, hidden_sizes=(4,))
    networks = dqn.make_networks(make_environment_spec(FakeEnvironment(5, obs_shape=(3,))), config)
    builder = Misnamed(config)
    source = object()
    with pytest.raises(ValueError, match=r"actor_modules gives \('q_network',\), but variable_names is \('policy',\)"):
        builder.make_actor(builder.make_policy(networks, True, 0), networks, source, None)
    assert builder.make_actor(builder.make_policy(networks, True, 0), networks, None, None).select_action(
        np.zeros(3, np.float32)) in (0, 1)
