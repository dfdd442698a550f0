"""DDPG: losses and networks against hand computations, the learner's update order, noise, policies and the config."""

from __future__ import annotations

import copy
import math
from typing import Iterator

import numpy as np
import pytest
import torch
from dm_env import specs
from torch import nn

from distrl.agents import AGENTS, get_agent
from distrl.agents.ddpg import Builder, Config, make_networks
from distrl.agents.ddpg.actor import (
    DeterministicPolicy,
    GaussianNoise,
    NoisyPolicy,
    OrnsteinUhlenbeckNoise,
)
from distrl.agents.ddpg.learning import DDPGLearner
from distrl.agents.ddpg.losses import actor_loss, critic_td_loss
from distrl.agents.ddpg.networks import Critic
from distrl.networks.encoders import IdentityEncoder
from distrl.specs import EnvironmentSpec
from distrl.types import SampleBatch, Transition, Versioned
from distrl.utils.config import ConfigError, apply_overrides

OBS_DIM = 3
LOW = np.array([-2.0, 0.0], dtype=np.float32)
HIGH = np.array([2.0, 1.0], dtype=np.float32)


def continuous_spec(low: np.ndarray = LOW, high: np.ndarray = HIGH) -> EnvironmentSpec:
    return EnvironmentSpec(
        observations=specs.Array((OBS_DIM,), np.float32, name="observation"),
        actions=specs.BoundedArray(low.shape, np.float32, low, high, name="action"),
        rewards=specs.Array((), np.float32, name="reward"),
        discounts=specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount"),
    )


SMALL = dict(actor_hidden_sizes=(16, 8), critic_hidden_sizes=(16, 8), batch_size=8, min_replay_size=8)


def random_batch(rng: np.random.Generator, size: int = 8, low: np.ndarray = LOW, high: np.ndarray = HIGH) -> SampleBatch:
    data = Transition(
        observation=rng.normal(size=(size, OBS_DIM)).astype(np.float32),
        action=rng.uniform(low, high, size=(size, low.shape[0])).astype(np.float32),
        reward=rng.normal(size=size).astype(np.float32),
        discount=rng.choice([0.0, 0.99, 0.99**3], size=size).astype(np.float32),
        next_observation=rng.normal(size=(size, OBS_DIM)).astype(np.float32),
    )
    return SampleBatch(
        keys=np.arange(size), data=data, probabilities=np.full(size, 1.0 / size), weights=np.ones(size, np.float32)
    )


def fixed_dataset(batches: list[SampleBatch]) -> Iterator[SampleBatch]:
    return iter(batches)


# ---------------------------------------------------------------- losses


class LinearCritic(nn.Module):
    """Q(s, a) = w . s + v . a + c, as a module the losses can call."""

    def __init__(self, w: list[float], v: list[float], c: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.v = nn.Parameter(torch.tensor(v))
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return observation @ self.w + action @ self.v + self.c


class LinearPolicy(nn.Module):
    """mu(s) = s @ M."""

    def __init__(self, m: list[list[float]]) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.tensor(m))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return observation @ self.m


def test_critic_target_and_loss_match_hand_computation() -> None:
    # One observation dim, one action dim, two transitions.
    critic = LinearCritic([1.0], [2.0], 0.5)  # Q(s, a) = s + 2a + 0.5
    target_critic = LinearCritic([3.0], [-1.0], 0.0)  # Q'(s, a) = 3s - a
    target_policy = LinearPolicy([[0.5]])  # mu'(s) = s / 2
    s = torch.tensor([[1.0], [2.0]])
    a = torch.tensor([[0.0], [1.0]])
    r = torch.tensor([1.0, -2.0])
    d = torch.tensor([0.9, 0.0])  # the second transition ended in a termination
    s2 = torch.tensor([[2.0], [4.0]])
    out = critic_td_loss(critic, target_policy, target_critic, s, a, r, d, s2)
    # Q'(s', mu'(s')) = 3 s' - s'/2 = 2.5 s'  -> [5, 10]
    # y = r + d * Q'  = [1 + 0.9 * 5, -2 + 0] = [5.5, -2]
    # Q(s, a) = [1 + 0 + 0.5, 2 + 2 + 0.5] = [1.5, 4.5]
    # loss = mean((Q - y)^2) = mean([16, 42.25]) = 29.125
    assert out.loss.item() == pytest.approx(29.125)
    np.testing.assert_allclose(out.td_error.numpy(), [4.0, -6.5])
    assert out.q_mean.item() == pytest.approx(3.0)
    out.loss.backward()
    # d loss / d c = mean(2 (Q - y)) = mean([-8, 13]) = 2.5; targets get no gradient.
    assert critic.c.grad.item() == pytest.approx(2.5)
    assert target_critic.c.grad is None and target_policy.m.grad is None


def test_actor_loss_is_minus_mean_q_and_gives_the_deterministic_policy_gradient() -> None:
    critic = LinearCritic([1.0], [-3.0], 0.0)  # Q(s, a) = s - 3a, dQ/da = -3
    policy = LinearPolicy([[2.0]])  # mu(s) = 2s, dmu/dm = s
    s = torch.tensor([[1.0], [-2.0], [4.0]])
    loss = actor_loss(policy, critic, s)
    # Q(s, mu(s)) = s - 6s = -5s -> mean = -5 * mean(s) = -5; loss = 5.
    assert loss.item() == pytest.approx(5.0)
    loss.backward(inputs=list(policy.parameters()))
    # d loss / dm = -mean(dQ/da * s) = -mean(-3 s) = 3 * mean(s) = 3.
    assert policy.m.grad.item() == pytest.approx(3.0)
    assert critic.w.grad is None and critic.v.grad is None


def test_actor_pre_activation_penalty_adds_w_mean_sum_x_squared_and_pulls_x_towards_zero() -> None:
    torch.manual_seed(0)
    networks = make_networks(continuous_spec(), Config())
    policy = networks.policy_network
    critic = LinearCritic([0.0, 0.0, 0.0], [0.0, 0.0], 0.0)  # Q = 0: only the penalty has a gradient
    s = torch.randn(6, OBS_DIM)
    with torch.no_grad():
        policy.head.linear.bias.fill_(3.0)  # deep in the tanh's flat end
        x = policy.head.linear(policy.torso(policy.encoder(s)))
    assert actor_loss(policy, critic, s).item() == 0.0
    loss = actor_loss(policy, critic, s, pre_activation_weight=0.1)
    assert loss.item() == pytest.approx(0.1 * x.square().sum(-1).mean().item(), rel=1e-5)
    loss.backward(inputs=list(policy.parameters()))
    # d loss / d bias_j = 0.1 * mean_i 2 x_ij > 0: a descent step moves x towards 0.
    assert torch.allclose(policy.head.linear.bias.grad, 0.2 * x.mean(0), rtol=1e-5)
    assert (policy.head.linear.bias.grad > 0).all()
    # The penalised path computes the same actions as the policy's forward.
    assert torch.allclose(policy.head.squash(x), policy(s))


def test_actor_pre_activation_weight_must_be_non_negative() -> None:
    with pytest.raises(ConfigError, match="actor_pre_activation_weight"):
        Config(actor_pre_activation_weight=-0.1)


def test_learner_refuses_the_penalty_for_a_policy_without_a_pre_tanh_output() -> None:
    networks = make_networks(continuous_spec(), Config(**SMALL))
    networks.policy_network = LinearPolicy([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    batches = [random_batch(np.random.default_rng(0))]
    with pytest.raises(ValueError, match="actor_pre_activation_weight=0.1 needs a policy network"):
        DDPGLearner(networks, fixed_dataset(batches), Config(**SMALL))
    DDPGLearner(networks, fixed_dataset(batches), Config(**SMALL, actor_pre_activation_weight=0.0)).step()


@pytest.mark.parametrize("action_layer", [0, 1, 2])
def test_critic_network_matches_explicit_formula(action_layer: int) -> None:
    torch.manual_seed(0)
    low, high = np.array([-2.0], np.float32), np.array([2.0], np.float32)
    critic = Critic(IdentityEncoder(OBS_DIM), (4, 3), action_layer, low, high)
    s = torch.randn(5, OBS_DIM)
    a = torch.rand(5, 1) * 4 - 2
    linears = [m for m in critic.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    x = s
    for i, layer in enumerate(linears[:-1]):
        if i == action_layer:
            x = torch.cat([x, a / 2.0], dim=-1)  # actions enter rescaled to [-1, 1]
        x = torch.relu(x @ layer.weight.T + layer.bias)
    if action_layer == 2:
        x = torch.cat([x, a / 2.0], dim=-1)
    expected = (x @ linears[-1].weight.T + linears[-1].bias).squeeze(-1)
    torch.testing.assert_close(critic(s, a), expected)


def test_make_networks_shapes_bounds_and_initialisation() -> None:
    config = Config(**SMALL)
    networks = make_networks(continuous_spec(), config)
    head = networks.policy_network.head.linear
    assert head.weight.abs().max() <= 3e-3 and head.bias.abs().max() <= 3e-3
    output = networks.critic_network.output
    assert output.weight.abs().max() <= 3e-3 and output.bias.abs().max() <= 3e-3
    for first in (networks.policy_network.torso.layers[0], networks.critic_network.joint_torso.layers[0]):
        bound = 1 / math.sqrt(first.in_features)  # fan-in uniform, biases included
        assert first.weight.abs().max() <= bound and first.bias.abs().max() <= bound
        assert first.bias.abs().max() > 0

    s = torch.randn(32, OBS_DIM)
    action = networks.policy_network(s)
    assert action.shape == (32, 2)
    assert networks.critic_network(s, action).shape == (32,)
    # The actor starts near the middle of the box.
    np.testing.assert_allclose(action.detach().numpy(), np.broadcast_to((LOW + HIGH) / 2, (32, 2)), atol=0.05)
    with torch.no_grad():
        head.bias.fill_(100.0)  # saturate the tanh: still inside the box
        far = networks.policy_network(s * 100)
    assert torch.all(far >= torch.from_numpy(LOW)) and torch.all(far <= torch.from_numpy(HIGH))


def test_make_networks_rejects_discrete_actions() -> None:
    spec = continuous_spec()._replace(actions=specs.DiscreteArray(3))
    with pytest.raises(ValueError, match="bounded continuous"):
        make_networks(spec, Config(**SMALL))


# ---------------------------------------------------------------- learner


def make_learner(config: Config, batches: list[SampleBatch], seed: int = 0) -> DDPGLearner:
    torch.manual_seed(seed)
    return DDPGLearner(make_networks(continuous_spec(), config), fixed_dataset(batches), config)


def test_learner_step_updates_critic_then_actor_then_both_targets() -> None:
    config = Config(**SMALL, tau=0.1, max_grad_norm=0.5, critic_learning_rate=1e-2, actor_learning_rate=1e-2)
    batch = random_batch(np.random.default_rng(0))
    learner = make_learner(config, [batch])
    policy, critic = learner._policy, learner._critic
    target_policy_before = copy.deepcopy(learner._target_policy)
    target_critic_before = copy.deepcopy(learner._target_critic)
    # An independent re-implementation of one step with plain torch.
    ref_policy, ref_critic = copy.deepcopy(policy), copy.deepcopy(critic)
    data = Transition(*(torch.from_numpy(np.asarray(x)) if not isinstance(x, tuple) else x for x in batch.data))
    with torch.no_grad():
        y = data.reward + data.discount * target_critic_before(
            data.next_observation, target_policy_before(data.next_observation)
        )
    critic_opt = torch.optim.Adam(ref_critic.parameters(), lr=1e-2)
    critic_loss = ((ref_critic(data.observation, data.action) - y) ** 2).mean()
    critic_opt.zero_grad()
    critic_loss.backward()
    torch.nn.utils.clip_grad_norm_(ref_critic.parameters(), 0.5)
    critic_opt.step()
    policy_opt = torch.optim.Adam(ref_policy.parameters(), lr=1e-2)
    frozen_critic = copy.deepcopy(ref_critic).requires_grad_(False)
    pre_tanh = ref_policy.head.linear(ref_policy.torso(ref_policy.encoder(data.observation)))
    policy_loss = (-frozen_critic(data.observation, ref_policy(data.observation)).mean()
                   + config.actor_pre_activation_weight * pre_tanh.square().sum(-1).mean())
    policy_opt.zero_grad()
    policy_loss.backward()
    torch.nn.utils.clip_grad_norm_(ref_policy.parameters(), 0.5)
    policy_opt.step()

    learner.step()

    for ours, ref in ((critic, ref_critic), (policy, ref_policy)):
        for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    # theta' <- 0.9 theta'_old + 0.1 theta_new, for both targets.
    for target, before, online in (
        (learner._target_critic, target_critic_before, critic),
        (learner._target_policy, target_policy_before, policy),
    ):
        for p_t, p_b, p_o in zip(target.parameters(), before.parameters(), online.parameters()):
            torch.testing.assert_close(p_t, 0.9 * p_b + 0.1 * p_o)
            assert not p_t.requires_grad
    assert learner.steps == 1


def test_learner_logs_metric_names_and_serves_versioned_policy_variables() -> None:
    config = Config(**SMALL, log_every=2)
    rng = np.random.default_rng(1)
    learner = make_learner(config, [random_batch(rng) for _ in range(4)])
    assert learner.step() == {}
    metrics = learner.step()
    assert set(metrics) == {
        "losses/critic_loss", "losses/actor_loss", "losses/q_values", "charts/learner_steps", "charts/updates_per_s",
    }
    assert metrics["charts/learner_steps"] == 2.0
    variables = learner.get_variables(["policy"])
    assert isinstance(variables, Versioned) and variables.version == 2
    assert all(isinstance(v, np.ndarray) for v in variables.value["policy"].values())
    assert learner.get_variables(["policy"]).value["policy"] is variables.value["policy"]  # cached
    learner.step()
    newer = learner.get_variables(["policy"])
    assert newer.version == 3 and newer.value["policy"] is not variables.value["policy"]
    with pytest.raises(KeyError, match="critic"):
        learner.get_variables(["critic"])


def test_save_restore_round_trip() -> None:
    config = Config(**SMALL)
    rng = np.random.default_rng(2)
    batches = [random_batch(rng) for _ in range(6)]
    learner = make_learner(config, batches[:3] + batches[3:], seed=0)
    for _ in range(3):
        learner.step()
    state = learner.save()
    rng_draw = torch.rand(3)
    learner.step()
    learner.step()
    continued = {k: v.clone() for k, v in learner._policy.state_dict().items()}
    continued_critic = {k: v.clone() for k, v in learner._target_critic.state_dict().items()}

    fresh = make_learner(config, batches[3:5], seed=123)  # different initial weights
    fresh.restore(state)
    assert fresh.steps == 3
    torch.testing.assert_close(torch.rand(3), rng_draw)  # the torch RNG is restored
    fresh.step()
    fresh.step()
    for name, value in fresh._policy.state_dict().items():
        torch.testing.assert_close(value, continued[name], rtol=0, atol=0)
    for name, value in fresh._target_critic.state_dict().items():
        torch.testing.assert_close(value, continued_critic[name], rtol=0, atol=0)
    assert fresh.steps == 5
    assert fresh.get_variables(["policy"]).version == 5


# ---------------------------------------------------------------- noise and policies


def test_ou_noise_mean_reverts_and_has_stationary_variance_sigma2_over_2theta() -> None:
    # 20,000 independent processes at once (one per element of sigma).
    n, theta, dt, sigma = 20_000, 0.15, 1e-2, 0.3
    noise = OrnsteinUhlenbeckNoise(np.full(n, sigma), theta, dt, np.random.default_rng(0))
    start = 2.0
    noise._state = np.full(n, start)
    steps = 200
    for _ in range(steps):
        x = noise.sample()
    # E[x_t] = x_0 exp(-theta t dt) and Var = sigma^2 (1 - exp(-2 theta t dt)) / (2 theta).
    t = steps * dt
    assert x.mean() == pytest.approx(start * math.exp(-theta * t), abs=0.01)
    assert x.var() == pytest.approx(sigma**2 * (1 - math.exp(-2 * theta * t)) / (2 * theta), rel=0.03)
    # Long enough to forget the start (t = 22, exp(-2 theta t) < 0.2%): the
    # variance reaches the stationary sigma^2 / (2 theta); the mean keeps decaying.
    for _ in range(2_000):
        x = noise.sample()
    t = (steps + 2_000) * dt
    assert x.mean() == pytest.approx(start * math.exp(-theta * t), abs=0.01)
    assert x.var() == pytest.approx(sigma**2 / (2 * theta), rel=0.03)
    np.testing.assert_allclose(noise.stationary_std, sigma / math.sqrt(2 * theta))
    # Lag-one autocorrelation exp(-theta dt).
    y = noise.sample()
    assert np.corrcoef(x, y)[0, 1] == pytest.approx(math.exp(-theta * dt), abs=0.005)
    noise.reset()
    np.testing.assert_array_equal(noise._state, 0.0)


def test_ou_noise_with_unit_dt_has_the_same_stationary_variance() -> None:
    noise = OrnsteinUhlenbeckNoise(np.full(20_000, 0.2), theta=0.15, dt=1.0, rng=np.random.default_rng(1))
    for _ in range(60):
        x = noise.sample()
    assert x.var() == pytest.approx(0.2**2 / 0.3, rel=0.03)


def test_gaussian_noise_scale() -> None:
    noise = GaussianNoise(np.array([0.5, 2.0]), np.random.default_rng(0))
    draws = np.stack([noise.sample() for _ in range(20_000)])
    np.testing.assert_allclose(draws.std(0), [0.5, 2.0], rtol=0.03)
    np.testing.assert_allclose(draws.mean(0), [0.0, 0.0], atol=0.05)
    corr = np.corrcoef(draws[:-1, 0], draws[1:, 0])[0, 1]
    assert abs(corr) < 0.03  # independent per step


class ConstantPolicy(nn.Module):
    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("value", torch.tensor(value))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.value.expand(observation.shape[0], -1)


def builder_networks(config: Config, mu: np.ndarray):
    networks = make_networks(continuous_spec(), config)
    networks.policy_network = ConstantPolicy(mu)
    return networks


@pytest.mark.parametrize("noise_type", ["gaussian", "ou"])
@pytest.mark.parametrize("exploration", [None, 0.5])
def test_policy_noise_is_sigma_times_half_range_times_exploration(noise_type: str, exploration: float | None) -> None:
    config = Config(**SMALL, noise_type=noise_type, noise_sigma=0.1, ou_dt=1.0)
    mu = np.array([0.0, 0.5], np.float32)  # the middle of the box, so nothing is clipped
    policy = Builder(config).make_policy(builder_networks(config, mu), evaluation=False, seed=0, exploration=exploration)
    policy.reset()
    obs = np.zeros(OBS_DIM, np.float32)
    actions = np.stack([policy(obs) for _ in range(10_000)])
    assert actions.dtype == np.float32 and actions.shape == (10_000, 2)
    scale = 1.0 if exploration is None else exploration
    sigma = scale * 0.1 * (HIGH - LOW) / 2
    expected_std = sigma if noise_type == "gaussian" else sigma / math.sqrt(2 * 0.15)
    np.testing.assert_allclose(actions[200:].std(0), expected_std, rtol=0.1)


def test_several_actors_spread_their_noise_scales_unless_asked_not_to() -> None:
    spread = Builder(Config(**SMALL))
    assert spread.actor_exploration(0, 1) is None  # one actor (and the single-process mode): noise_sigma.
    assert [spread.actor_exploration(i, 3) for i in range(3)] == pytest.approx([2.0, 1.0, 0.5])
    assert [spread.actor_exploration(i, 5) for i in range(5)] == pytest.approx([2.0, 2**0.5, 1.0, 2**-0.5, 0.5])
    same = Builder(Config(**SMALL, actor_noise_scales="same"))
    assert [same.actor_exploration(i, 3) for i in range(3)] == [None, None, None]
    with pytest.raises(ConfigError, match="Config.actor_noise_scales must be one of spread, same"):
        Config(actor_noise_scales="wide")


def test_policy_reports_the_noise_it_acts_with() -> None:
    config = Config(**SMALL, noise_sigma=0.1)
    builder = Builder(config)
    networks = builder_networks(config, np.array([0.0, 0.5], np.float32))
    state = builder.make_policy(networks, evaluation=False, seed=0, exploration=builder.actor_exploration(2, 3))
    assert state.exploration_state() == {"kind": "gaussian", "sigma": pytest.approx(list(0.5 * 0.1 * (HIGH - LOW) / 2))}
    assert builder.make_policy(networks, evaluation=True, seed=0).exploration_state() == {"kind": "none"}


def test_exploration_zero_and_evaluation_policy_are_deterministic() -> None:
    config = Config(**SMALL)
    mu = np.array([1.5, 0.25], np.float32)
    networks = builder_networks(config, mu)
    obs = np.zeros(OBS_DIM, np.float32)
    for policy in (
        Builder(config).make_policy(networks, evaluation=True, seed=0),
        Builder(config).make_policy(networks, evaluation=False, seed=0, exploration=0.0),
    ):
        np.testing.assert_array_equal(policy(obs), mu)
    assert isinstance(Builder(config).make_policy(networks, evaluation=True, seed=0), DeterministicPolicy)
    with pytest.raises(ValueError, match="exploration"):
        Builder(config).make_policy(networks, evaluation=False, seed=0, exploration=-1.0)


def test_actions_are_clipped_to_the_bounds() -> None:
    config = Config(**SMALL, noise_sigma=5.0)
    mu = np.array([1.9, 0.9], np.float32)  # near the upper bounds
    policy = Builder(config).make_policy(builder_networks(config, mu), evaluation=False, seed=3)
    obs = np.zeros(OBS_DIM, np.float32)
    actions = np.stack([policy(obs) for _ in range(2000)])
    assert actions.dtype == np.float32
    assert np.all(actions >= LOW) and np.all(actions <= HIGH)
    assert np.mean(actions == HIGH) > 0.3 and np.mean(actions == LOW) > 0.1  # clipped at both ends


def test_each_policy_has_its_own_seeded_generator() -> None:
    config = Config(**SMALL)
    mu = np.array([0.0, 0.5], np.float32)
    networks = builder_networks(config, mu)
    obs = np.zeros(OBS_DIM, np.float32)

    def run(seed: int) -> np.ndarray:
        policy = Builder(config).make_policy(networks, evaluation=False, seed=seed)
        return np.stack([policy(obs) for _ in range(20)])

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.allclose(run(7), run(8))
    np.random.seed(0)  # the global generator plays no part
    first = run(7)
    np.random.seed(1)
    np.testing.assert_array_equal(run(7), first)


def test_reset_restarts_ou_noise_each_episode() -> None:
    config = Config(**SMALL, noise_type="ou")
    policy = Builder(config).make_policy(builder_networks(config, np.zeros(2, np.float32) + [0, 0.5]), False, seed=0)
    assert isinstance(policy, NoisyPolicy) and isinstance(policy.noise, OrnsteinUhlenbeckNoise)
    obs = np.zeros(OBS_DIM, np.float32)
    for _ in range(50):
        policy(obs)
    assert np.any(policy.noise._state != 0)
    policy.reset()
    np.testing.assert_array_equal(policy.noise._state, 0.0)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "field, value",
    [
        ("tau", 1.5),
        ("actor_learning_rate", 0.0),
        ("critic_learning_rate", -1e-3),
        ("discount", 1.1),
        ("noise_type", "uniform"),
        ("noise_sigma", 0.0),
        ("ou_theta", -0.1),
        ("max_grad_norm", 0.0),
        ("critic_action_layer", 3),
        ("actor_hidden_sizes", ()),
        ("min_replay_size", 10),
        ("samples_per_insert", 0.0),
    ],
)
def test_config_validation_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"Config\.{field} must .*got {value!r}".replace("(", r"\(").replace(")", r"\)")):
        Config(**{field: value})


def test_config_overrides_parse_and_every_field_is_documented() -> None:
    config = apply_overrides(Config(), ["critic_hidden_sizes=64,32", "max_grad_norm=none", "noise_type=ou"])
    assert config.critic_hidden_sizes == (64, 32) and config.max_grad_norm is None and config.noise_type == "ou"
    import dataclasses

    assert all(f.metadata.get("doc") for f in dataclasses.fields(Config))


def test_agent_is_registered() -> None:
    assert AGENTS["ddpg"] == "distrl.agents.ddpg"
    module = get_agent("ddpg")
    assert module.Builder is Builder and module.Config is Config and module.make_networks is make_networks
