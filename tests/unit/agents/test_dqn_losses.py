"""The double-Q TD loss against hand-computed values: termination, truncation, double vs single Q,
importance weights and where the gradient goes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distrl.agents.dqn.losses import double_q_td_loss


class TableQ(nn.Module):
    """Q(s, .) read from a table: the observation is the state index, shape [B, 1]."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.table[observation[:, 0].long()]


# Online and target tables disagree on the best action in s1 and s2, so double
# and single Q-learning bootstrap from different values there.
ONLINE = [[1.0, 2.0], [3.0, 0.5], [0.0, 4.0]]
TARGET = [[0.5, 1.5], [2.0, 6.0], [1.0, -1.0]]

# Three transitions, as the n-step adder writes them:
#   0: mid-episode, s0 -a1-> s1, R = 1.0, D = 0.9 (bootstraps from s1);
#   1: ends in a termination, s1 -a0-> s2, R = 2.0, D = 0 (no bootstrap);
#   2: ends in a truncation (time limit), s2 -a0-> s2, R = 0.5, D = 0.99 (bootstraps from s2).
OBSERVATION = [[0.0], [1.0], [2.0]]
ACTION = [1, 0, 0]
REWARD = [1.0, 2.0, 0.5]
DISCOUNT = [0.9, 0.0, 0.99]
NEXT_OBSERVATION = [[1.0], [2.0], [2.0]]
Q_TAKEN = [2.0, 3.0, 0.0]  # ONLINE[s][a]

# Double Q: a* = argmax_a ONLINE[s'] = (0, 1, 1), bootstrap TARGET[s'][a*] = (2.0, -1.0, -1.0).
DOUBLE_TARGETS = [1.0 + 0.9 * 2.0, 2.0, 0.5 + 0.99 * -1.0]  # 2.8, 2.0, -0.49
# Single (plain DQN): a* = argmax_a TARGET[s'] = (1, 0, 0), bootstrap (6.0, 1.0, 1.0).
SINGLE_TARGETS = [1.0 + 0.9 * 6.0, 2.0, 0.5 + 0.99 * 1.0]  # 6.4, 2.0, 1.49


def huber(x: float, delta: float = 1.0) -> float:
    return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)


def loss(double_q: bool, weights: list[float] = (1.0, 1.0, 1.0)):
    online, target = TableQ(ONLINE), TableQ(TARGET)
    output = double_q_td_loss(
        online, target,
        observation=torch.tensor(OBSERVATION), action=torch.tensor(ACTION), reward=torch.tensor(REWARD),
        discount=torch.tensor(DISCOUNT), next_observation=torch.tensor(NEXT_OBSERVATION),
        weights=torch.tensor(list(weights)), double_q=double_q, huber_delta=1.0,
    )
    return output, online, target


@pytest.mark.parametrize("double_q, targets", [(True, DOUBLE_TARGETS), (False, SINGLE_TARGETS)])
def test_td_errors_and_loss_match_hand_computation(double_q, targets):
    output, _, _ = loss(double_q)
    expected_errors = [y - q for y, q in zip(targets, Q_TAKEN)]
    assert output.td_error.tolist() == pytest.approx(expected_errors)
    assert output.loss.item() == pytest.approx(sum(huber(e) for e in expected_errors) / 3)
    assert output.q_mean.item() == pytest.approx(sum(Q_TAKEN) / 3)


def test_termination_does_not_bootstrap_and_truncation_does():
    double, _, _ = loss(True)
    single, _, _ = loss(False)
    # Termination (D = 0): the target is the return alone, whichever rule picks a*.
    assert double.td_error[1].item() == single.td_error[1].item() == pytest.approx(2.0 - 3.0)
    # Truncation (D = 0.99): the targets differ, so the bootstrap from s2 is there.
    assert double.td_error[2].item() == pytest.approx(-0.49)
    assert single.td_error[2].item() == pytest.approx(1.49)


def test_importance_weights_scale_each_elementwise_loss():
    weights = [0.5, 1.0, 2.0]
    output, _, _ = loss(True, weights)
    errors = [y - q for y, q in zip(DOUBLE_TARGETS, Q_TAKEN)]
    assert output.loss.item() == pytest.approx(sum(w * huber(e) for w, e in zip(weights, errors)) / 3)


def test_gradient_reaches_only_the_taken_online_values():
    output, online, target = loss(True)
    output.loss.backward()
    errors = [y - q for y, q in zip(DOUBLE_TARGETS, Q_TAKEN)]
    expected = torch.zeros(3, 2)
    for state, action, error in zip([0, 1, 2], ACTION, errors):
        # d huber(y - q) / dq = -clip(y - q, -1, 1); the loss is a mean over 3.
        expected[state, action] += -max(-1.0, min(1.0, error)) / 3
    torch.testing.assert_close(online.table.grad, expected)
    assert target.table.grad is None
