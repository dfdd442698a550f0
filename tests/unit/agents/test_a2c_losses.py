"""A2C losses: GAE(lambda) against hand-computed references and the actor-critic loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from distrl.agents.a2c.losses import a2c_loss, gae

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
