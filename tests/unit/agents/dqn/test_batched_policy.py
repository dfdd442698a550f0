"""DQN with several environments per actor: the batched epsilon-greedy policy, the builder's
batched actor and adders, and the config field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distrl.adders.vector_nstep import VectorNStepTransitionAdder
from distrl.agents import dqn
from distrl.agents.actors import BatchedFeedForwardActor
from distrl.agents.dqn.actor import BatchedEpsilonGreedyPolicy, EpsilonGreedyPolicy
from distrl.environment_loop import VectorEnvironmentLoop
from distrl.envs.fakes import FakeEnvironment
from distrl.replay.client import ReplayClient
from distrl.specs import make_environment_spec
from distrl.utils.config import ConfigError
from distrl.utils.counting import Counter

NUM_ACTIONS = 3
SPEC = make_environment_spec(FakeEnvironment(5, obs_shape=(4,), num_actions=NUM_ACTIONS))
SMALL = dict(hidden_sizes=(16,), batch_size=4, min_replay_size=4)


def networks(seed: int = 0) -> dqn.DQNNetworks:
    torch.manual_seed(seed)
    return dqn.make_networks(SPEC, dqn.Config(**SMALL))


def policy(start: float, end: float = None, decay: int = 0, seed: int = 0, nets=None) -> BatchedEpsilonGreedyPolicy:
    nets = networks() if nets is None else nets
    return BatchedEpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, start, start if end is None else end, decay,
                                      seed=seed)


def observations(num_envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(num_envs, 4)).astype(np.float32)


@pytest.mark.parametrize("num_envs", [1, 2, 7])
def test_actions_are_int64_one_per_row(num_envs):
    actions, behaviour = policy(0.5).select_actions(observations(num_envs))
    assert actions.shape == (num_envs,) and actions.dtype == np.int64
    assert behaviour is actions
    assert ((0 <= actions) & (actions < NUM_ACTIONS)).all()


def test_epsilon_zero_is_the_argmax_of_each_row_with_numpy_and_torch():
    nets = networks()
    batch = observations(64)
    with torch.no_grad():
        expected = nets.q_network(torch.from_numpy(batch)).argmax(-1).numpy()
    assert len(set(expected.tolist())) > 1  # The rows do not all agree, so the check is per row.
    numpy_path = policy(0.0, nets=nets)
    np.testing.assert_array_equal(numpy_path.select_actions(batch)[0], expected)
    torch_path = policy(0.0, nets=nets)
    torch_path._numpy_forward = None  # The path of networks compile_numpy_forward does not take (CNNs).
    np.testing.assert_array_equal(torch_path.select_actions(batch)[0], expected)


def test_epsilon_one_draws_uniform_actions_across_rows():
    batch = np.zeros((30_000, 4), np.float32)  # One observation: greedy rows would all agree.
    actions, _ = policy(1.0).select_actions(batch)
    frequencies = np.bincount(actions, minlength=NUM_ACTIONS) / len(actions)
    np.testing.assert_allclose(frequencies, 1 / NUM_ACTIONS, atol=0.015)
    rows = np.stack([policy(1.0, seed=s).select_actions(np.zeros((4, 4), np.float32))[0] for s in range(200)])
    assert all(len(set(rows[:, i].tolist())) == NUM_ACTIONS for i in range(4))  # Every row explores.


def test_the_schedule_counts_env_steps_as_the_single_env_policy_does():
    nets = networks()
    single = EpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, 0.9, 0.1, 8, seed=0)
    batched = policy(0.9, 0.1, 8, nets=nets)
    expected = []
    for _ in range(12):
        expected.append(single.epsilon)
        single(observations(1)[0])
    got = []
    for _ in range(4):
        got.extend(batched.epsilons(3).tolist())
        batched.select_actions(observations(3))
    assert got == pytest.approx(expected)
    assert batched.exploration_state() == single.exploration_state()
    assert batched.exploration_state()["steps"] == 12 and batched.epsilon == pytest.approx(0.1)


def test_state_round_trip_repeats_the_actions_and_matches_the_single_env_policy():
    nets = networks()
    first = policy(0.9, 0.1, 50, seed=3, nets=nets)
    first.select_actions(observations(5))
    state = first.get_state()
    assert set(state) == set(EpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, 1, 1, 0, seed=0).get_state())
    expected = [first.select_actions(observations(5, seed=s))[0] for s in range(10)]
    second = policy(0.9, 0.1, 50, seed=99, nets=nets)
    second.set_state(state)
    np.testing.assert_array_equal([second.select_actions(observations(5, seed=s))[0] for s in range(10)], expected)
    assert second.exploration_state() == first.exploration_state()
    # A single-env policy's checkpoint state loads too (the same keys and meaning).
    single = EpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, 0.9, 0.1, 50, seed=0)
    single(observations(1)[0])
    second.set_state(single.get_state())
    assert second.exploration_state() == single.exploration_state()


def test_one_observation_acts_as_the_single_env_policy():
    nets = networks()
    batched, single = policy(0.3, seed=5, nets=nets), EpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, 0.3, 0.3, 0, 5)
    assert [batched(o) for o in observations(50)] == [single(o) for o in observations(50)]


class RecordingClient(ReplayClient):
    """Records every insert call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def insert(self, items, priorities=None):
        self.calls.append(len(items.action))

    def sample(self, batch_size):
        raise NotImplementedError

    def can_sample(self, batch_size):
        return False

    def update_priorities(self, keys, priorities):
        pass

    def info(self):
        return {}


def test_builder_makes_a_batched_actor_over_the_lanes_of_one_vector_nstep_adder():
    config = dqn.Config(**SMALL, envs_per_actor=3, adder_batch_size=4, n_step=2)
    builder = dqn.Builder(config)
    assert builder.envs_per_actor == 3
    nets = networks()
    batched = builder.make_policy(nets, evaluation=False, seed=0)
    assert isinstance(batched, BatchedEpsilonGreedyPolicy)
    assert type(dqn.Builder(dqn.Config(**SMALL)).make_policy(nets, evaluation=False, seed=0)) is EpsilonGreedyPolicy
    client = RecordingClient()
    adders = builder.make_adders(client, 3)
    assert len({id(a) for a in adders}) == 3 and len({id(a._adder) for a in adders}) == 1
    assert isinstance(adders[0]._adder, VectorNStepTransitionAdder) and adders[0]._adder.n_step == 2
    actor = builder.make_batched_actor(batched, nets, None, adders)
    assert isinstance(actor, BatchedFeedForwardActor) and actor.num_envs == 3
    environments = [FakeEnvironment(5, obs_shape=(4,), num_actions=NUM_ACTIONS) for _ in range(3)]
    counter = Counter()
    VectorEnvironmentLoop(environments, actor, counter).run(num_steps=60)
    assert counter.get("env_steps") == 60
    # 20 steps per env of 5-step episodes: a call of 3 x 4 transitions each time 4 + (n - 1) steps are
    # recorded, and flush sends the rest (the last episode ended, so all its transitions are formed).
    assert client.calls == [12] * 4
    actor.flush()
    assert client.calls == [12] * 5
    assert builder.make_rate_limiter().error_buffer >= 2 * 12 * config.samples_per_insert
    with pytest.raises(TypeError, match="needs a BatchedPolicy"):
        builder.make_batched_actor(EpsilonGreedyPolicy(nets.q_network, NUM_ACTIONS, 1, 1, 0, 0), nets, None, adders)


@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_envs_per_actor_must_be_a_positive_integer(value):
    with pytest.raises(ConfigError, match="Config.envs_per_actor must be a positive integer"):
        dqn.Config(envs_per_actor=value)
    assert dqn.Config().envs_per_actor == 1


def test_a_grouped_insert_must_fit_in_replay():
    with pytest.raises(ValueError, match=r"envs_per_actor.*adder_batch_size 16 x envs_per_actor.*max_replay_size \(1000\)"):
        dqn.Config(envs_per_actor=100, max_replay_size=1000, min_replay_size=100)
    assert dqn.Config(envs_per_actor=62, max_replay_size=1000, min_replay_size=100).envs_per_actor == 62
