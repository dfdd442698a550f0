"""A2C: GAE against hand-computed references, the loss, the queue data path,
the vector environment loop, and learning on CartPole."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import dm_env
import numpy as np
import pytest
import torch

from distrl.adders import TrajectoryAdder
from distrl.agents import a2c
from distrl.agents.a2c.actor import GreedyPolicy, SamplingPolicy
from distrl.agents.a2c.learning import A2CLearner
from distrl.agents.a2c.losses import a2c_loss, gae
from distrl.core import BatchedActor
from distrl.environment_loop import VectorEnvironmentLoop
from distrl.envs.fakes import ContinuousFake, FakeEnvironment
from distrl.experiments import ExperimentConfig, make_experiment_config, run_local
from distrl.experiments.local import LocalAgent, SampleIterator
from distrl.replay.client import LocalReplayClient
from distrl.types import SampleBatch
from distrl.replay.table import Table
from distrl.specs import make_environment_spec
from distrl.types import Trajectory
from distrl.utils.config import ConfigError
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger

# ---------------------------------------------------------------------------
# GAE. gamma = 0.9, lambda = 0.8 (gamma * lambda = 0.72); one segment of T = 3
# steps with rewards (1, 2, 3), V(o_t) = (0.5, 1.0, 1.5) and, unless a case
# changes it, V(next_observation_t) = (1.0, 1.5, 2.0). So within an episode
#   delta = (1 + 0.9 * 1.0 - 0.5, 2 + 0.9 * 1.5 - 1.0, 3 + 0.9 * 2.0 - 1.5) = (1.4, 2.35, 3.3).

GAMMA, LAMBDA = 0.9, 0.8
REWARDS = [1.0, 2.0, 3.0]
VALUES = [0.5, 1.0, 1.5]
NEXT_VALUES = [1.0, 1.5, 2.0]

GAE_CASES = {
    # No episode end: the segment's last step bootstraps from V(bootstrap obs) = 2.0.
    # A2 = 3.3, A1 = 2.35 + 0.72 * 3.3 = 4.726, A0 = 1.4 + 0.72 * 4.726 = 4.80272.
    "unfinished": dict(discounts=[1, 1, 1], lasts=[0, 0, 0], masks=[1, 1, 1], next_values=NEXT_VALUES,
                       advantages=[4.80272, 4.726, 3.3]),
    # Termination at t = 1 (d = 0): delta1 = 2 - 1.0 = 1.0 (V(next) = 7 is ignored),
    # nothing flows back from t = 2 (the next episode): A0 = 1.4 + 0.72 * 1.0.
    "terminated": dict(discounts=[1, 0, 1], lasts=[0, 1, 0], masks=[1, 1, 1], next_values=[1.0, 7.0, 2.0],
                       advantages=[2.12, 1.0, 3.3]),
    # Truncation at t = 1 (d = 1): delta1 = 2 + 0.9 * 7 - 1.0 = 7.3 bootstraps from the
    # final observation's value; nothing flows back from t = 2: A0 = 1.4 + 0.72 * 7.3.
    "truncated": dict(discounts=[1, 1, 1], lasts=[0, 1, 0], masks=[1, 1, 1], next_values=[1.0, 7.0, 2.0],
                      advantages=[6.656, 7.3, 3.3]),
    # Padding at t = 2 (mask 0, reward 0, discount 0, zero observation with V = 0.3 here):
    # t = 1 is the last real step and bootstraps from V = 1.5; A2 = 0, R2 = V2.
    "padded": dict(discounts=[1, 1, 0], lasts=[0, 0, 0], masks=[1, 1, 0], next_values=[1.0, 1.5, 0.3],
                   rewards=[1.0, 2.0, 0.0], values=[0.5, 1.0, 0.3], advantages=[3.092, 2.35, 0.0]),
    # An env discount below 1 inside the episode scales both the bootstrap and the carry:
    # delta0 = 1 + 0.9 * 0.5 * 1.0 - 0.5 = 0.95, A0 = 0.95 + 0.72 * 0.5 * 4.726.
    "env_discount": dict(discounts=[0.5, 1, 1], lasts=[0, 0, 0], masks=[1, 1, 1], next_values=NEXT_VALUES,
                         advantages=[0.95 + 0.36 * 4.726, 4.726, 3.3]),
}


def _gae_inputs(case: dict[str, Any]) -> dict[str, torch.Tensor]:
    def row(values, dtype=torch.float32):
        return torch.tensor([values], dtype=dtype)

    return dict(
        rewards=row(case.get("rewards", REWARDS)),
        discounts=row(case["discounts"]),
        lasts=row(case["lasts"], torch.bool),
        masks=row(case["masks"], torch.bool),
        values=row(case.get("values", VALUES)),
        next_values=row(case["next_values"]),
    )


@pytest.mark.parametrize("name", sorted(GAE_CASES))
def test_gae_hand_computed(name):
    case = GAE_CASES[name]
    inputs = _gae_inputs(case)
    advantages, returns = gae(**inputs, gamma=GAMMA, lambda_=LAMBDA)
    np.testing.assert_allclose(advantages[0].numpy(), case["advantages"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(returns.numpy(), (advantages + inputs["values"]).numpy(), rtol=1e-6)


def test_gae_is_vectorised_over_the_batch():
    """All cases stacked into one batch give each row's own answer."""
    names = sorted(GAE_CASES)
    rows = [_gae_inputs(GAE_CASES[name]) for name in names]
    batch = {key: torch.cat([row[key] for row in rows]) for key in rows[0]}
    advantages, _ = gae(**batch, gamma=GAMMA, lambda_=LAMBDA)
    expected = np.array([GAE_CASES[name]["advantages"] for name in names])
    np.testing.assert_allclose(advantages.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gae_limits_lambda_one_and_zero():
    """lambda = 1: R_t is the discounted return bootstrapped from the segment's end
    (the sum of TD errors telescopes); lambda = 0: R_t is the one-step TD target."""
    rng = np.random.default_rng(0)
    batch, time_steps, gamma = 4, 6, 0.95
    rewards = torch.tensor(rng.normal(size=(batch, time_steps)), dtype=torch.float64)
    values = torch.tensor(rng.normal(size=(batch, time_steps)), dtype=torch.float64)
    next_values = torch.tensor(rng.normal(size=(batch, time_steps)), dtype=torch.float64)
    next_values[:, :-1] = values[:, 1:]  # Within an episode next_observation[t] is observation[t + 1].
    ones = torch.ones(batch, time_steps, dtype=torch.float64)
    falses = torch.zeros(batch, time_steps, dtype=torch.bool)
    trues = torch.ones(batch, time_steps, dtype=torch.bool)
    _, returns = gae(rewards, ones, falses, trues, values, next_values, gamma, 1.0)
    for t in range(time_steps):
        discounted = sum(gamma ** (k - t) * rewards[:, k] for k in range(t, time_steps))
        expected = discounted + gamma ** (time_steps - t) * next_values[:, -1]
        np.testing.assert_allclose(returns[:, t].numpy(), expected.numpy(), rtol=1e-10)
    _, returns = gae(rewards, ones, falses, trues, values, next_values, gamma, 0.0)
    np.testing.assert_allclose(returns.numpy(), (rewards + gamma * next_values).numpy(), rtol=1e-10)


# ---------------------------------------------------------------------------
# The loss.


def test_a2c_loss_pieces_and_masking():
    logits = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [5.0, 5.0]]], requires_grad=True)  # [B=1, T=3, A=2]
    distribution = torch.distributions.Categorical(logits=logits)
    values = torch.tensor([[0.5, -1.0, 100.0]], requires_grad=True)
    actions = torch.tensor([[1, 1, 0]])
    advantages = torch.tensor([[2.0, -1.0, 50.0]])
    returns = torch.tensor([[1.5, 0.0, -100.0]])
    masks = torch.tensor([[True, True, False]])  # The third step is padding: it must not count.
    out = a2c_loss(distribution, values, actions, advantages, returns, masks,
                   value_coef=0.5, entropy_coef=0.01, normalize_advantages=False)
    log_p = torch.log_softmax(logits.detach(), -1)
    logp_taken = [log_p[0, 0, 1], log_p[0, 1, 1]]
    policy_loss = -(2.0 * logp_taken[0] - 1.0 * logp_taken[1]) / 2
    value_loss = ((1.5 - 0.5) ** 2 + (0.0 + 1.0) ** 2) / 2
    entropy = -(log_p[0, :2].exp() * log_p[0, :2]).sum(-1).mean()
    assert out.policy_loss.item() == pytest.approx(policy_loss.item(), rel=1e-6)
    assert out.value_loss.item() == pytest.approx(value_loss, rel=1e-6)
    assert out.entropy.item() == pytest.approx(entropy.item(), rel=1e-6)
    assert out.loss.item() == pytest.approx(policy_loss.item() + 0.5 * value_loss - 0.01 * entropy.item(), rel=1e-6)
    out.loss.backward()
    # The padded step gets no gradient; the value gradient is value_coef * dL/dV only.
    assert logits.grad[0, 2].abs().max().item() == 0.0
    np.testing.assert_allclose(values.grad.numpy(), [[0.5 * -2 * 1.0 / 2, 0.5 * -2 * 1.0 / 2, 0.0]], rtol=1e-6)


def test_a2c_loss_normalised_advantages():
    logits = torch.zeros(1, 4, 2)
    distribution = torch.distributions.Categorical(logits=logits)
    values = torch.zeros(1, 4)
    actions = torch.zeros(1, 4, dtype=torch.long)
    advantages = torch.tensor([[1.0, 2.0, 3.0, 1000.0]])
    masks = torch.tensor([[True, True, True, False]])
    out = a2c_loss(distribution, values, actions, advantages, values, masks, 0.5, 0.0, normalize_advantages=True)
    # Normalised over the 3 real steps the advantages have mean 0, so with equal
    # log-probs the policy loss is 0; unnormalised it would be -2 * log(0.5).
    assert out.policy_loss.item() == pytest.approx(0.0, abs=1e-6)
    out = a2c_loss(distribution, values, actions, advantages, values, masks, 0.5, 0.0, normalize_advantages=False)
    assert out.policy_loss.item() == pytest.approx(2.0 * np.log(2.0), rel=1e-6)


# ---------------------------------------------------------------------------
# The vector environment loop.


class RecordingBatchedActor(BatchedActor):
    """Acts 0 everywhere and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.batch_sizes: list[int] = []

    def select_actions(self, observations: Any) -> Any:
        self.batch_sizes.append(len(observations))
        return np.zeros(len(observations), dtype=np.int64)

    def observe_first(self, index: int, timestep: dm_env.TimeStep) -> None:
        assert timestep.first()
        self.calls.append(("first", index))

    def observe(self, index: int, action: Any, next_timestep: dm_env.TimeStep) -> None:
        self.calls.append(("step", index, float(next_timestep.reward), next_timestep.last()))

    def update(self, wait: bool = False) -> None:
        self.calls.append(("update",))


class RecordingLogger(Logger):
    def __init__(self) -> None:
        self.rows: list[tuple[dict, int]] = []

    def write(self, metrics, env_steps: int) -> None:
        self.rows.append((dict(metrics), env_steps))


def test_vector_loop_counts_and_reports_episodes():
    # Episode lengths 3 and 4: returns 1+2+3 = 6 and 1+2+3+4 = 10.
    environments = [FakeEnvironment(3), FakeEnvironment(4, terminate=False)]
    actor, logger, counter = RecordingBatchedActor(), RecordingLogger(), Counter()
    ended: list[dict] = []
    loop = VectorEnvironmentLoop(environments, actor, counter, logger, on_episode_end=ended.append)
    results = loop.run(num_steps=20)  # 10 vector steps.
    assert counter.get("env_steps") == 20
    assert actor.batch_sizes == [2] * 10
    # env 0 ends at vector steps 3, 6, 9; env 1 at 4 and 8.
    assert [r["episode_return"] for r in results] == [6.0, 10.0, 6.0, 10.0, 6.0]
    assert [r["episode_length"] for r in results] == [3.0, 4.0, 3.0, 4.0, 3.0]
    assert all(r["completed"] == 1.0 and r["steps_per_second"] > 0 for r in results)
    assert ended == results
    assert counter.get("episodes") == 5
    assert [row[0]["charts/episodic_return"] for row in logger.rows] == [6, 10, 6, 10, 6]
    assert [row[1] for row in logger.rows] == [6, 8, 12, 16, 18]  # env_steps when each episode ended.
    assert set(logger.rows[0][0]) == {"charts/episodic_return", "charts/episodic_length", "charts/SPS"}
    # Every env is reset after its LAST, before the next action is chosen.
    firsts = [c[1] for c in actor.calls if c[0] == "first"]
    assert firsts == [0, 1, 0, 1, 0, 1, 0]  # initial resets, then after steps 3, 4, 6, 8, 9.
    assert sum(1 for c in actor.calls if c[0] == "update") == 10
    # Episodes carry over between run() calls; num_steps rounds up to whole vector steps.
    results = loop.run(num_steps=3)  # 2 vector steps: steps 11 and 12.
    assert counter.get("env_steps") == 24
    assert [r["episode_return"] for r in results] == [6.0, 10.0]
    assert [e.actions.count(0) for e in environments] == [12, 12]


def test_vector_loop_without_update():
    actor = RecordingBatchedActor()
    loop = VectorEnvironmentLoop([FakeEnvironment(2)] * 1, actor, should_update=False)
    loop.run(num_steps=5)
    assert loop.counter.get("env_steps") == 5
    assert not any(c[0] == "update" for c in actor.calls)


# ---------------------------------------------------------------------------
# The data path: trajectory adders -> FIFO queue -> learner, synchronous.


def _fake_spec(continuous: bool = False):
    env = ContinuousFake(5, obs_shape=(3,)) if continuous else FakeEnvironment(5, obs_shape=(3,))
    return make_environment_spec(env)


class KeyRecorder:
    """Wraps a dataset and records the keys of every batch it hands out."""

    def __init__(self, dataset) -> None:
        self._dataset = dataset
        self.keys: list[list[int]] = []
        self.versions: list[np.ndarray] = []

    def __iter__(self):
        return self

    def __next__(self) -> SampleBatch:
        sample = next(self._dataset)
        self.keys.append(sample.keys.tolist())
        self.versions.append(sample.data.extras["policy_version"])
        return sample


def test_queue_learner_path_consumes_each_segment_once_in_order():
    config = a2c.Config(envs_per_actor=4, sequence_length=3, hidden_sizes=(8,), log_every=1)
    builder = a2c.Builder(config)
    spec = _fake_spec()
    networks = a2c.make_networks(spec, config)
    actor_networks = a2c.make_networks(spec, config)
    table = builder.make_replay_tables(spec, seed=0)[0]
    client = LocalReplayClient(table)
    dataset = KeyRecorder(SampleIterator(client, builder.batch_size))
    learner = builder.make_learner(networks, dataset, client, Counter(), RecordingLogger(), torch.device("cpu"))
    policy = builder.make_policy(actor_networks, evaluation=False, seed=0)
    adders = [builder.make_adder(client) for _ in range(4)]
    actor = builder.make_batched_actor(policy, actor_networks, learner, adders)
    actor.update(wait=True)
    environments = [FakeEnvironment(length, obs_shape=(3,)) for length in (2, 3, 4, 7)]
    loop = VectorEnvironmentLoop(environments, LocalAgent(actor, learner, client, builder.batch_size))
    loop.run(num_steps=4 * 12)  # 12 vector steps = 4 rounds of T = 3.
    assert learner.steps == 4
    # One learner step per round, each taking that round's 4 segments, oldest first.
    assert dataset.keys == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    info = client.info()
    assert info["inserts"] == info["samples"] == info["removals"] == 16 and info["size"] == 0
    # Synchronous: every step of update k was generated by weights of version k.
    for version, behaviour in enumerate(dataset.versions):
        assert behaviour.shape == (4, 3)
        assert (behaviour == version).all()
    # The actor follows the learner.
    for name, value in learner.get_variables(["policy"]).value["policy"].items():
        np.testing.assert_array_equal(actor_networks.policy.state_dict()[name].numpy(), value)


def test_continuous_actor_clips_for_env_and_records_unclipped_sample():
    config = a2c.Config(hidden_sizes=(8,), init_log_std=1.5)  # wide: many samples fall outside [-1, 1].
    spec = _fake_spec(continuous=True)
    networks = a2c.make_networks(spec, config)
    assert not networks.discrete
    policy = SamplingPolicy(networks, seed=0)
    observations = np.zeros((64, 3), np.float32)
    actions, behaviour = policy.select_actions(observations)
    assert actions.shape == behaviour.shape == (64, 1) and actions.dtype == np.float32
    assert np.abs(behaviour).max() > 1.0
    np.testing.assert_array_equal(actions, np.clip(behaviour, -1.0, 1.0))
    greedy = GreedyPolicy(networks)(observations[0])
    assert greedy.shape == (1,) and -1.0 <= greedy[0] <= 1.0

    # Through the batched actor, the adder sees the unclipped sample.
    client = LocalReplayClient(Table.queue("q", 4))
    adders = [TrajectoryAdder(client, sequence_length=2) for _ in range(2)]
    actor = a2c.Builder(config).make_batched_actor(policy, networks, None, adders)
    environments = [ContinuousFake(5, obs_shape=(3,)) for _ in range(2)]
    loop = VectorEnvironmentLoop(environments, actor, should_update=False)
    loop.run(num_steps=4)
    segments = client.sample(2).data
    sent = np.stack([np.stack(env.actions) for env in environments])  # [env, T, 1]
    np.testing.assert_array_equal(np.clip(segments.action, -1.0, 1.0), sent)
    assert (segments.extras["policy_version"] == -1).all()


def test_numpy_acting_matches_the_torch_policy():
    """The policies act through a numpy forward pass; it must agree with the torch network."""
    from distrl.networks.numpy_inference import compile_numpy_forward

    config = a2c.Config(hidden_sizes=(16, 16))
    rng = np.random.default_rng(0)
    for continuous in (False, True):
        networks = a2c.make_networks(_fake_spec(continuous), config)
        with torch.no_grad():  # Make the policy far from uniform / zero-mean.
            for parameter in networks.policy.parameters():
                parameter.mul_(30.0)
        forward = compile_numpy_forward(networks.policy)
        observations = rng.normal(size=(6, 3)).astype(np.float32)
        with torch.no_grad():
            distribution = networks.policy(torch.from_numpy(observations))
        expected = distribution.logits if not continuous else distribution.base_dist.loc
        # Categorical keeps normalised logits, so compare log-softmax of the raw ones.
        normalise = (lambda x: torch.log_softmax(torch.from_numpy(x), -1).numpy()) if not continuous else (lambda x: x)
        np.testing.assert_allclose(normalise(forward(observations)), expected.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(normalise(forward(observations[2])), expected[2].numpy(), rtol=1e-4, atol=1e-4)
        greedy = GreedyPolicy(networks)
        if not continuous:
            assert [greedy(o) for o in observations] == expected.argmax(-1).tolist()
        else:
            np.testing.assert_allclose([greedy(o) for o in observations], np.clip(expected.numpy(), -1, 1), atol=1e-4)

    # Sampling frequencies follow pi(. | s).
    networks = a2c.make_networks(_fake_spec(), a2c.Config(hidden_sizes=(16,)))
    with torch.no_grad():
        networks.policy.head.logits.bias.copy_(torch.tensor([0.0, 1.0]))
    policy = SamplingPolicy(networks, seed=1)
    observation = np.zeros((1, 3), np.float32)
    samples = np.concatenate([policy.select_actions(np.repeat(observation, 100, 0))[0] for _ in range(100)])
    p1 = torch.softmax(networks.policy(torch.from_numpy(observation)).logits, -1)[0, 1].item()
    assert abs(samples.mean() - p1) < 0.015


@pytest.mark.parametrize("shared_torso", [False, True])
def test_forward_with_bootstrap_matches_separate_passes(shared_torso):
    networks = a2c.make_networks(_fake_spec(), a2c.Config(hidden_sizes=(16,), shared_torso=shared_torso))
    observation, next_observation = torch.randn(4, 5, 3), torch.randn(4, 5, 3)
    distribution, values, next_values = networks.forward_with_bootstrap(observation, next_observation)
    reference_distribution, reference_values = networks(observation)
    torch.testing.assert_close(distribution.logits, reference_distribution.logits)
    torch.testing.assert_close(values, reference_values)
    torch.testing.assert_close(next_values, networks.value(next_observation).detach())
    assert values.requires_grad and not next_values.requires_grad and values.shape == (4, 5)


def _trajectory_batch(spec, batch: int, time_steps: int, continuous: bool) -> Trajectory:
    rng = np.random.default_rng(0)
    shape = (batch, time_steps)
    action = rng.normal(size=shape + (1,)).astype(np.float32) if continuous else rng.integers(0, 2, shape)
    return Trajectory(
        observation=rng.normal(size=shape + (3,)).astype(np.float32),
        action=action,
        reward=rng.normal(size=shape).astype(np.float32),
        discount=np.ones(shape, np.float32),
        last=np.zeros(shape, bool),
        next_observation=rng.normal(size=shape + (3,)).astype(np.float32),
        mask=np.ones(shape, bool),
        extras={"policy_version": np.zeros(shape, np.int64)},
    )


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("shared_torso", [False, True])
def test_learner_step_metrics_variables_and_save_restore(continuous, shared_torso):
    # The same batch over and over: its segments age, so any lag is accepted.
    config = a2c.Config(hidden_sizes=(16,), shared_torso=shared_torso, log_every=2, normalize_advantages=True,
                        max_policy_lag=None)
    spec = _fake_spec(continuous)
    networks = a2c.make_networks(spec, config)
    assert networks.shared_torso == shared_torso
    data = _trajectory_batch(spec, 4, 5, continuous)
    sample = SampleBatch(np.arange(4), data, np.ones(4), np.ones(4))
    logger = RecordingLogger()
    learner = A2CLearner(networks, itertools.repeat(sample), config, Counter(), logger)
    first = learner.get_variables(["policy"])
    assert first.version == 0
    assert learner.get_variables(["policy"]).value["policy"] is first.value["policy"]  # cached per version
    assert learner.step() == {}
    metrics = learner.step()
    assert set(metrics) == {"losses/policy_loss", "losses/value_loss", "losses/entropy", "charts/policy_lag",
                            "charts/dropped_segments", "charts/learner_steps", "charts/updates_per_s"}
    assert metrics["charts/learner_steps"] == 2 and metrics["charts/policy_lag"] == pytest.approx(0.5)
    assert all(np.isfinite(v) for v in metrics.values())
    assert logger.rows[-1][0] == metrics
    second = learner.get_variables(["policy"])
    assert second.version == 2
    assert any(not np.array_equal(first.value["policy"][k], second.value["policy"][k]) for k in first.value["policy"])
    with pytest.raises(KeyError):
        learner.get_variables(["critic"])

    state = learner.save()
    learner.step()
    after_one = learner.get_variables(["policy"]).value["policy"]
    learner.restore(state)
    assert learner.steps == 2
    learner.step()
    for k, v in learner.get_variables(["policy"]).value["policy"].items():
        np.testing.assert_array_equal(v, after_one[k])


def test_learner_accepts_tensor_batches():
    """A prefetching dataset hands over torch tensors; the result must not depend on it."""
    import tree

    config = a2c.Config(hidden_sizes=(16,), log_every=1)
    spec = _fake_spec()
    data = _trajectory_batch(spec, 4, 5, continuous=False)
    metrics = []
    for batch in (data, tree.map_structure(torch.from_numpy, data)):
        torch.manual_seed(0)
        networks = a2c.make_networks(spec, config)
        sample = SampleBatch(np.arange(4), batch, np.ones(4), np.ones(4))
        learner = A2CLearner(networks, iter([sample]), config)
        metrics.append({k: v for k, v in learner.step().items() if k != "charts/updates_per_s"})
    assert metrics[0] == metrics[1]


def test_learner_drops_stale_segments_and_fills_the_batch_with_fresh_ones():
    """With max_policy_lag 0 a segment acted by older weights than the learner's is
    dropped, and the learner samples on until it has a full batch of fresh ones."""
    config = a2c.Config(hidden_sizes=(16,), log_every=1, envs_per_actor=2)
    spec = _fake_spec()
    networks = a2c.make_networks(spec, config)

    def batch(versions):
        data = _trajectory_batch(spec, len(versions), 5, continuous=False)
        policy_version = np.repeat(np.asarray(versions, np.int64)[:, None], 5, axis=1)
        data = data._replace(extras={"policy_version": policy_version})
        return SampleBatch(np.arange(len(versions)), data, np.ones(len(versions)), np.ones(len(versions)))

    samples = iter([batch([0, 0]), batch([0, 1]), batch([1, 0]), batch([0, 0]), batch([1, 1]), batch([2, 2])])
    learner = A2CLearner(networks, samples, config)
    learner.step()  # Version 0 data at version 0: nothing dropped.
    assert learner.dropped_segments == 0
    metrics = learner.step()  # At version 1: [0, 1] -> 1 fresh, [1, 0] -> 1 fresh: batch of 2.
    assert learner.dropped_segments == 2 and metrics["charts/dropped_segments"] == 2
    assert metrics["charts/policy_lag"] == pytest.approx(0.0)
    learner.step()  # At version 2: [0, 0] and [1, 1] are stale, [2, 2] is the batch.
    assert learner.dropped_segments == 6 and learner.steps == 3


def test_synchronous_config_rules():
    with pytest.raises(ConfigError, match="batch_size"):
        a2c.Config(envs_per_actor=4, batch_size=6)
    with pytest.raises(ConfigError, match="max_policy_lag"):
        a2c.Config(envs_per_actor=4, batch_size=12, max_policy_lag=1)
    assert a2c.Builder(a2c.Config(envs_per_actor=4, batch_size=12, max_policy_lag=2)).batch_size == 12
    with pytest.raises(ConfigError, match="batch_size"):
        a2c.Builder(a2c.Config(envs_per_actor=4, batch_size=4), num_actors=2)
    builder = a2c.Builder(a2c.Config(envs_per_actor=4)).with_num_actors(3)
    assert builder.batch_size == 12 and builder.synchronous
    assert not a2c.Builder(a2c.Config(max_policy_lag=None)).synchronous


def test_config_validation_names_field_and_value():
    with pytest.raises(ConfigError, match=r"Config.gae_lambda must lie in \[0, 1\], got 1.5"):
        a2c.Config(gae_lambda=1.5)
    with pytest.raises(ConfigError, match="optimizer.*'sgd'"):
        a2c.Config(optimizer="sgd")
    with pytest.raises(ConfigError, match="sequence_length.*0"):
        a2c.Config(sequence_length=0)
    with pytest.raises(ConfigError, match="batch_size"):
        a2c.Config(batch_size=0)
    assert a2c.Builder(a2c.Config(envs_per_actor=3)).batch_size == 3
    assert a2c.Builder(a2c.Config(envs_per_actor=3, batch_size=6, max_policy_lag=1)).batch_size == 6
    for field in dataclasses.fields(a2c.Config):
        assert field.metadata.get("doc"), field.name


@pytest.mark.parametrize("envs_per_actor", [1, 3])
def test_run_local_on_fake_env_both_paths(tmp_path, envs_per_actor):
    """envs_per_actor = 1 runs the single-env loop (batched actor behind SingleStreamActor),
    > 1 the vector loop; both count env steps exactly and keep the policy lag at 0."""
    config = a2c.Config(envs_per_actor=envs_per_actor, sequence_length=4, hidden_sizes=(8,), log_every=5)
    steps = 4 * 3 * 10
    experiment = ExperimentConfig(
        agent="a2c", env="fake", builder=a2c.Builder(config),
        network_factory=lambda spec: a2c.make_networks(spec, config),
        environment_factory=lambda seed: FakeEnvironment(7, obs_shape=(2,)),
        max_env_steps=steps, eval_every=steps, eval_episodes=2, run_dir=str(tmp_path), progress=False,
    )
    summary = run_local(experiment)
    assert summary["env_steps"] == steps
    assert summary["learner_steps"] == steps // (4 * envs_per_actor)
    assert summary["final_eval_return"] == 28.0  # 1 + ... + 7, whatever the actions.
    assert summary["replay"]["inserts"] == summary["replay"]["samples"] == steps // 4


def test_debug_mode_is_deterministic(tmp_path):
    def run(name: str) -> dict:
        config = make_experiment_config(
            "a2c", "gym:CartPole-v1", seed=7, max_env_steps=2_000, eval_every=2_000, eval_episodes=2,
            run_dir=str(tmp_path / name), progress=False,
        )
        return run_local(config)

    first, second = run("a"), run("b")
    assert first["learner_steps"] == second["learner_steps"] == 2_000 // (4 * 5)
    assert first["evaluations"][-1]["return_mean"] == second["evaluations"][-1]["return_mean"]
    metrics = [(Path(s["run_dir"]) / "metrics.csv").read_text().splitlines() for s in (first, second)]
    returns = [[line.split(",")[-1] for line in lines if "charts/episodic_return" in line] for lines in metrics]
    assert len(returns[0]) > 10 and returns[0] == returns[1]


# ---------------------------------------------------------------------------
# Learning.


def test_a2c_learns_cartpole_quickly(tmp_path):
    config = make_experiment_config(
        "a2c", "gym:CartPole-v1", seed=0, max_env_steps=10_000, eval_every=5_000, eval_episodes=5,
        run_dir=str(tmp_path), progress=False,
    )
    summary = run_local(config)
    assert summary["learner_steps"] == 10_000 // (config.builder.batch_size * config.agent_config.sequence_length)
    best = max(e["return_mean"] for e in summary["evaluations"])
    assert best >= 150.0, summary["evaluations"]


@pytest.mark.slow
def test_a2c_solves_cartpole(tmp_path):
    """Issue 3 acceptance for one seed: greedy mean return >= 475 over 10 episodes within 100k env steps."""
    config = make_experiment_config(
        "a2c", "gym:CartPole-v1", seed=0, max_env_steps=100_000, eval_every=5_000, eval_episodes=10,
        run_dir=str(tmp_path), progress=False,
    )
    summary = run_local(config)
    assert summary["solved_at_env_steps"] is not None, summary["evaluations"]
