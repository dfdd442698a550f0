"""DQN parts: the learner's update schedule, logs, priorities and state; the builder's contract;
per-actor epsilons (Ape-X) against the configured schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from distrl.agents import dqn
from distrl.agents.dqn.actor import EpsilonGreedyPolicy, apex_epsilon
from distrl.agents.dqn.learning import DQNLearner
from distrl.envs.fakes import FakeEnvironment
from distrl.replay.client import LocalReplayClient
from distrl.specs import make_environment_spec
from distrl.types import SampleBatch, Transition
from distrl.utils.config import ConfigError
from distrl.utils.counting import Counter
from distrl.utils.loggers import BufferLogger

SPEC = make_environment_spec(FakeEnvironment(5, obs_shape=(3,), num_actions=2))
SMALL = dict(hidden_sizes=(8,), batch_size=4, min_replay_size=4)


def batch(seed: int = 0, size: int = 4) -> SampleBatch:
    rng = np.random.default_rng(seed)
    data = Transition(
        observation=rng.normal(size=(size, 3)).astype(np.float32),
        action=rng.integers(2, size=size),
        reward=rng.normal(size=size).astype(np.float32),
        discount=np.full(size, 0.9, np.float32),
        next_observation=rng.normal(size=(size, 3)).astype(np.float32),
    )
    return SampleBatch(np.arange(size), data, np.full(size, 1 / size), np.ones(size, np.float32))


class PriorityRecorder:
    """The part of a replay client the learner calls: records priority updates."""

    def __init__(self) -> None:
        self.updates: list[tuple[np.ndarray, np.ndarray]] = []

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> None:
        self.updates.append((keys, priorities))


def learner(config: dqn.Config, client=None, logger=None) -> DQNLearner:
    torch.manual_seed(0)
    return DQNLearner(dqn.make_networks(SPEC, config), itertools.repeat(batch()), config, client, Counter(), logger)


def params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_target_is_copied_every_target_update_period_updates():
    dqn_learner = learner(dqn.Config(**SMALL, target_update_period=3))
    online, target = dqn_learner._q_network, dqn_learner._target_network
    assert params_equal(online, target)
    for step in range(1, 7):
        dqn_learner.step()
        assert dqn_learner.steps == step
        assert params_equal(online, target) == (step % 3 == 0), step


def test_logs_means_over_log_every_updates_and_returns_nothing_between():
    logger = BufferLogger()
    dqn_learner = learner(dqn.Config(**SMALL, log_every=2), logger=logger)
    assert dqn_learner.step() == {}
    metrics = dqn_learner.step()
    assert set(metrics) == {"losses/td_loss", "losses/q_values", "charts/learner_steps", "charts/updates_per_s"}
    assert metrics["charts/learner_steps"] == 2.0
    ((logged, _),) = logger.drain()
    assert logged == metrics
    assert np.isfinite(metrics["losses/td_loss"]) and metrics["losses/td_loss"] >= 0


def test_prioritized_learner_sends_abs_td_error_plus_eps_for_the_sampled_keys():
    client = PriorityRecorder()
    dqn_learner = learner(dqn.Config(**SMALL, prioritized=True, priority_eps=0.25), client=client)
    dqn_learner.step()
    ((keys, priorities),) = client.updates
    np.testing.assert_array_equal(keys, np.arange(4))
    assert priorities.dtype == np.float64 and (priorities >= 0.25).all()
    assert not learner(dqn.Config(**SMALL), client=PriorityRecorder()).step()  # uniform: nothing sent.


def test_save_restore_round_trip_keeps_keys_and_continues_identically():
    config = dqn.Config(**SMALL)
    first = learner(config)
    for _ in range(3):
        first.step()
    state = first.save()
    assert set(state) == {"q_network", "target_network", "optimizer", "steps", "torch_rng", "metric_sums",
                          "updates_since_log"}
    second = learner(config)
    second.restore(state)
    assert second.steps == 3
    assert second.get_variables(["q_network"]).version == 3
    first.step()
    second.step()
    assert params_equal(first._q_network, second._q_network)


def test_builder_declares_what_its_learner_publishes():
    builder = dqn.Builder(dqn.Config(**SMALL))
    assert builder.variable_names == ("q_network",)
    published = learner(dqn.Config(**SMALL)).get_variables(builder.variable_names)
    assert set(published.value) == {"q_network"}
    with pytest.raises(KeyError, match="no variables named"):
        learner(dqn.Config(**SMALL)).get_variables(["policy"])


def test_one_actor_and_the_single_process_mode_follow_the_configured_schedule():
    builder = dqn.Builder(dqn.Config(**SMALL, epsilon_start=0.9, epsilon_end=0.1, epsilon_decay_steps=4))
    assert builder.actor_exploration(0, 1) is None
    policy = builder.make_policy(dqn.make_networks(SPEC, builder.config), evaluation=False, seed=0,
                                 exploration=builder.actor_exploration(0, 1))
    assert isinstance(policy, EpsilonGreedyPolicy)
    epsilons = []
    for _ in range(6):
        epsilons.append(policy.exploration_state()["epsilon"])
        policy(np.zeros(3, np.float32))
    assert epsilons == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1, 0.1])
    assert policy.exploration_state()["kind"] == "epsilon_greedy"


def test_several_actors_use_the_apex_table_unless_the_schedule_is_asked_for():
    apex = dqn.Builder(dqn.Config(**SMALL))
    assert [apex.actor_exploration(i, 3) for i in range(3)] == pytest.approx([0.4, 0.4**4.5, 0.4**8])
    networks = dqn.make_networks(SPEC, apex.config)
    fixed = apex.make_policy(networks, evaluation=False, seed=0, exploration=apex.actor_exploration(2, 3))
    fixed(np.zeros(3, np.float32))
    assert fixed.exploration_state()["epsilon"] == pytest.approx(0.4**8)
    schedule = dqn.Builder(dqn.Config(**SMALL, actor_epsilons="schedule"))
    assert [schedule.actor_exploration(i, 3) for i in range(3)] == [None, None, None]


def test_apex_table_and_option_are_checked():
    assert apex_epsilon(0, 8) == pytest.approx(0.4)
    assert apex_epsilon(7, 8) == pytest.approx(0.4**8)
    values = [apex_epsilon(i, 5) for i in range(5)]
    assert values == sorted(values, reverse=True)
    for index, num_actors in [(0, 1), (3, 3), (-1, 2)]:
        with pytest.raises(ValueError):
            apex_epsilon(index, num_actors)
    with pytest.raises(ConfigError, match="Config.actor_epsilons must be one of apex, schedule, got 'ape-x'"):
        dqn.Config(actor_epsilons="ape-x")


def test_actor_pulls_the_declared_variables_from_a_learner():
    config = dqn.Config(**SMALL)
    builder = dqn.Builder(config)
    source = learner(config)
    source.step()
    networks = dqn.make_networks(SPEC, config)
    actor = builder.make_actor(builder.make_policy(networks, True, 0), networks, source, None)
    actor.update(wait=True)
    assert actor.policy_version == 1
    assert params_equal(networks.q_network, source._q_network)
    client = LocalReplayClient(builder.make_replay_tables(SPEC, seed=0)[0])
    assert builder.make_adder(client).n_step == config.n_step


def test_greedy_action_of_the_numpy_path_is_the_first_maximum_as_np_argmax():
    """The one-observation greedy policy picks its action in Python (see GreedyPolicy): the same
    action as torch's argmax of the network's Q values, and the first of tied maxima."""
    from distrl.agents.dqn.actor import GreedyPolicy

    spec = make_environment_spec(FakeEnvironment(5, obs_shape=(3,), num_actions=4))
    networks = dqn.make_networks(spec, dqn.Config(hidden_sizes=(8,), dueling=False))
    policy = GreedyPolicy(networks.q_network)
    assert policy._numpy_forward is not None  # The numpy path is the one under test.
    rng = np.random.default_rng(0)
    for observation in rng.standard_normal((20, 3)).astype(np.float32):
        with torch.no_grad():
            expected = int(networks.q_network(torch.from_numpy(observation)[None]).argmax())
        assert policy(observation) == expected
    head = networks.q_network.head.advantage
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([1.0, 3.0, 3.0, 2.0]))
    assert policy(np.zeros(3, np.float32)) == 1
