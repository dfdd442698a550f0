"""DDPG with several environments per actor: the batched noisy policy (one forward of mu, one
noise stream per environment), the builder's batched actor and adders, and the config field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distrl.adders.vector_nstep import VectorNStepTransitionAdder
from distrl.agents import ddpg
from distrl.agents.actors import BatchedFeedForwardActor
from distrl.agents.ddpg.actor import BatchedNoisyPolicy, NoisyPolicy, OrnsteinUhlenbeckNoise
from distrl.environment_loop import VectorEnvironmentLoop
from distrl.envs.fakes import ContinuousFake
from distrl.replay.client import LocalReplayClient
from distrl.specs import make_environment_spec
from distrl.utils.config import ConfigError
from distrl.utils.counting import Counter

SPEC = make_environment_spec(ContinuousFake(5, obs_shape=(3,), action_dim=2))
SMALL = dict(actor_hidden_sizes=(16,), critic_hidden_sizes=(16,), batch_size=4, min_replay_size=4)


def batched_policy(num_envs: int, seed: int = 0, exploration: float | None = None,
                   **config) -> tuple[BatchedNoisyPolicy, ddpg.DDPGNetworks]:
    torch.manual_seed(0)
    settings = ddpg.Config(**SMALL, envs_per_actor=num_envs, **config)
    networks = ddpg.make_networks(SPEC, settings)
    policy = ddpg.Builder(settings).make_policy(networks, evaluation=False, seed=seed, exploration=exploration)
    return policy, networks


def observations(num_envs: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(num_envs, 3)).astype(np.float32)


def test_one_forward_gives_each_row_mu_of_its_own_observation_within_the_bounds():
    policy, networks = batched_policy(4, exploration=0.0)
    obs = observations(4)
    actions, behaviour = policy.select_actions(obs)
    assert actions is behaviour and actions.dtype == np.float32 and actions.shape == (4, 2)
    with torch.no_grad():
        expected = np.stack([networks.policy_network(torch.from_numpy(o[None]))[0].numpy() for o in obs])
    np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)
    noisy, _ = batched_policy(4, noise_sigma=5.0)
    actions = np.concatenate([noisy.select_actions(obs)[0] for _ in range(200)])
    assert np.all(actions >= -1.0) and np.all(actions <= 1.0) and np.mean(np.abs(actions) == 1.0) > 0.3


def test_every_environment_draws_its_own_noise_at_the_actors_scale():
    policy, networks = batched_policy(3, noise_sigma=0.2)
    obs = np.zeros((3, 3), np.float32)
    with torch.no_grad():
        mu = networks.policy_network(torch.from_numpy(obs)).numpy()
    noise = np.stack([policy.select_actions(obs)[0] - mu for _ in range(4000)])  # [steps, envs, action]
    np.testing.assert_allclose(noise.std(axis=0), 0.2, rtol=0.1)  # (high - low) / 2 = 1 here
    assert abs(np.corrcoef(noise[:, 0, 0], noise[:, 1, 0])[0, 1]) < 0.1  # independent streams
    assert policy.exploration_state() == {"kind": "gaussian", "sigma": pytest.approx([0.2, 0.2]), "streams": 3}


def test_an_environment_starting_an_episode_restarts_its_ou_stream_alone():
    policy, _ = batched_policy(3, noise_type="ou")
    assert isinstance(policy.noise, OrnsteinUhlenbeckNoise) and policy.noise._state.shape == (3, 2)
    for _ in range(20):
        policy.select_actions(observations(3))
    before = policy.noise._state.copy()
    policy.reset_env(1)
    np.testing.assert_array_equal(policy.noise._state[1], 0.0)
    np.testing.assert_array_equal(policy.noise._state[[0, 2]], before[[0, 2]])


def test_a_loop_restarts_each_environments_ou_stream_when_its_episode_starts():
    config = ddpg.Config(**SMALL, envs_per_actor=2, noise_type="ou")
    builder = ddpg.Builder(config)
    networks = ddpg.make_networks(SPEC, config)
    policy = builder.make_policy(networks, evaluation=False, seed=0)
    restarted = []
    reset_row = policy.noise.reset_row

    def recording_reset_row(index):
        restarted.append(index)
        reset_row(index)

    policy.noise.reset_row = recording_reset_row
    (table,) = builder.make_replay_tables(SPEC, seed=0)
    actor = builder.make_batched_actor(policy, networks, None, builder.make_adders(LocalReplayClient(table), 2))
    environments = [ContinuousFake(5, obs_shape=(3,), action_dim=2) for _ in range(2)]
    VectorEnvironmentLoop(environments, actor, Counter()).run(num_steps=24)  # 12 steps each: episodes 1, 2, 3
    assert sorted(restarted) == [0, 0, 0, 1, 1, 1]


def test_ou_state_of_another_shape_is_refused():
    two, _ = batched_policy(2, noise_type="ou")
    three, _ = batched_policy(3, noise_type="ou")
    with pytest.raises(ValueError, match=r"state of shape \(2, 2\) cannot be restored into noise of shape \(3, 2\)"):
        three.set_state(two.get_state())


@pytest.mark.parametrize("noise_type", ["gaussian", "ou"])
def test_state_round_trip_repeats_the_actions(noise_type):
    policy, _ = batched_policy(3, seed=5, noise_type=noise_type)
    for _ in range(7):
        policy.select_actions(observations(3))
    state = policy.get_state()
    expected = [policy.select_actions(observations(3, seed=i))[0] for i in range(5)]
    restored, _ = batched_policy(3, seed=99, noise_type=noise_type)
    restored.set_state(state)
    for i, actions in enumerate(expected):
        np.testing.assert_array_equal(restored.select_actions(observations(3, seed=i))[0], actions)


def test_a_batch_of_another_size_is_refused_and_one_observation_acts_as_environment_zero():
    policy, networks = batched_policy(3, exploration=0.0)
    with pytest.raises(ValueError, match="noise for 3 environments, got 2 observations"):
        policy.select_actions(observations(2))
    obs = observations(1)[0]
    np.testing.assert_allclose(policy(obs), policy.select_actions(np.stack([obs] * 3))[0][0], rtol=1e-6)


def test_builder_makes_a_batched_actor_over_the_lanes_of_one_vector_nstep_adder():
    config = ddpg.Config(**SMALL, envs_per_actor=3, adder_batch_size=4, n_step=2)
    builder = ddpg.Builder(config)
    assert builder.envs_per_actor == 3
    networks = ddpg.make_networks(SPEC, config)
    batched = builder.make_policy(networks, evaluation=False, seed=0)
    assert isinstance(batched, BatchedNoisyPolicy)
    single = ddpg.Builder(ddpg.Config(**SMALL)).make_policy(networks, evaluation=False, seed=0)
    assert type(single) is NoisyPolicy
    (table,) = builder.make_replay_tables(SPEC, seed=0)
    client = LocalReplayClient(table)
    adders = builder.make_adders(client, 3)
    assert isinstance(adders[0]._adder, VectorNStepTransitionAdder) and len({id(a._adder) for a in adders}) == 1
    actor = builder.make_batched_actor(batched, networks, None, adders)
    assert isinstance(actor, BatchedFeedForwardActor) and actor.num_envs == 3
    counter = Counter()
    environments = [ContinuousFake(5, obs_shape=(3,), action_dim=2) for _ in range(3)]
    VectorEnvironmentLoop(environments, actor, counter).run(num_steps=60)
    assert counter.get("env_steps") == 60
    # 20 steps per env of 5-step episodes: a block of 3 x 4 transitions each time 4 + (n - 1) steps are
    # recorded, so 4 blocks; the stored actions are the batched policy's, within the bounds.
    assert table.info()["inserts"] == 48
    actions = table.sample(16, block=False).data.action
    assert actions.shape == (16, 2) and actions.dtype == np.float32 and np.all(np.abs(actions) <= 1.0)
    with pytest.raises(TypeError, match="DDPGBuilder with several environments per actor needs a BatchedPolicy"):
        builder.make_batched_actor(single, networks, None, adders)


@pytest.mark.parametrize("agent", [ddpg])
@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_envs_per_actor_must_be_a_positive_integer(agent, value):
    with pytest.raises(ConfigError, match="Config.envs_per_actor must be a positive integer"):
        agent.Config(envs_per_actor=value)
    assert agent.Config().envs_per_actor == 1
