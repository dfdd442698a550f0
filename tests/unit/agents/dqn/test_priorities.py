"""Actor-computed initial priorities (Ape-X) against hand-computed n-step TD errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from distrl.agents.dqn.priorities import td_error_priorities
from distrl.types import Transition


class StateIndexQ(nn.Embedding):
    """Q(s, .) as a learnable table row, looked up by the state index in ``observation[:, 0]``."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__(len(table), len(table[0]), _weight=torch.tensor(table))

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return super().forward(observation[:, 0].long())


def batch() -> Transition:
    # 0: s0 -a1-> s1, R 1.0, D 0.9: |1 + 0.9 * max(3, 0.5) - 2| = 1.7
    # 1: s1 -a0-> s2, R -1.0, D 0 (termination): |-1 - 3| = 4
    # 2: s2 -a1-> s0, R 0.5, D 0.81 (truncated tail): |0.5 + 0.81 * 2 - 4| = 1.88
    return Transition(
        observation=np.array([[0], [1], [2]], np.float32), action=np.array([1, 0, 1], np.int64),
        reward=np.array([1.0, -1.0, 0.5], np.float32), discount=np.array([0.9, 0.0, 0.81], np.float32),
        next_observation=np.array([[1], [2], [0]], np.float32), extras=(),
    )


def test_priorities_are_the_n_step_td_errors_under_the_actors_network():
    q_network = StateIndexQ([[1.0, 2.0], [3.0, 0.5], [0.0, 4.0]])
    priorities = td_error_priorities(q_network, priority_eps=1e-3)(batch())
    assert priorities.dtype == np.float64 and priorities.shape == (3,)
    np.testing.assert_allclose(priorities, [1.7 + 1e-3, 4.0 + 1e-3, 1.88 + 1e-3], rtol=1e-6)
    assert q_network.weight.grad is None  # No graph is built.


def test_priorities_follow_the_weights_the_actor_loads():
    q_network = StateIndexQ([[1.0, 2.0], [3.0, 0.5], [0.0, 4.0]])
    priority_fn = td_error_priorities(q_network, priority_eps=0.0)
    with torch.no_grad():
        q_network.weight.copy_(torch.zeros(3, 2))  # What a variable client's load does.
    np.testing.assert_allclose(priority_fn(batch()), [1.0, 1.0, 0.5])


@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.5])
def test_a_zero_td_error_gets_priority_eps(eps):
    q_network = StateIndexQ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    zero = batch()._replace(reward=np.zeros(3, np.float32))
    np.testing.assert_allclose(td_error_priorities(q_network, eps)(zero), [eps] * 3)


def test_a_dqn_adder_inserts_the_actors_priorities_only_when_asked():
    from distrl.agents import dqn
    from distrl.envs.fakes import FakeEnvironment
    from distrl.replay.client import LocalReplayClient
    from distrl.specs import make_environment_spec

    env = FakeEnvironment(5, obs_shape=(3,))
    spec = make_environment_spec(env)
    for actor_priorities in (False, True):
        config = dqn.Config(batch_size=4, min_replay_size=4, n_step=1, adder_batch_size=4, prioritized=True,
                            priority_eps=0.0, priority_exponent=1.0, actor_priorities=actor_priorities)
        builder = dqn.Builder(config)
        networks = dqn.make_networks(spec, config)
        (table,) = builder.make_replay_tables(spec, seed=0)
        adder = builder.make_adder(LocalReplayClient(table), networks)
        timestep = env.reset()
        adder.add_first(timestep)
        items = []
        for action in [0, 1, 0, 1]:
            next_timestep = env.step(action)
            items.append((timestep.observation, action, next_timestep))
            adder.add(np.int64(action), next_timestep)
            timestep = next_timestep
        stored = table.sampler.sum_tree.get(np.arange(4)) - table.sampler.eps
        if not actor_priorities:
            np.testing.assert_allclose(stored, 1.0)  # The table's maximum priority.
            continue
        with torch.no_grad():
            for slot, (observation, action, next_timestep) in enumerate(items):
                q = networks.q_network(torch.as_tensor(np.stack([observation, next_timestep.observation])))
                discount = config.discount * next_timestep.discount
                expected = abs(next_timestep.reward + discount * q[1].max().item() - q[0, action].item())
                assert stored[slot] == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_actor_priorities_need_prioritized_replay():
    from distrl.agents import dqn

    with pytest.raises(ValueError, match="actor_priorities"):
        dqn.Config(actor_priorities=True)


def test_an_adder_made_without_the_actors_networks_cannot_compute_priorities():
    from distrl.agents import dqn
    from distrl.replay.client import LocalReplayClient

    builder = dqn.Builder(dqn.Config(prioritized=True, actor_priorities=True))
    with pytest.raises(ValueError, match="actor_priorities is true, but the adder was made without"):
        builder.make_adder(LocalReplayClient(None))
    assert dqn.Builder(dqn.Config(prioritized=True)).make_adder(LocalReplayClient(None)) is not None

