"""The DQN-shaped batches the writers send, and the runtime figures the benchmark copies.

Built in the driver: this module imports the DQN config (torch) and the
environment registry (gymnasium), which the actor processes never need.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from distrl.adders.nstep import NStepTransitionAdder
from distrl.agents.dqn.config import Config
from distrl.envs.registry import make_environment
from distrl.experiments.distributed.config import DistributedConfig
from distrl.types import Transition

_NUM_BATCHES = 8  # Distinct pre-built batches each writer cycles through.


def dqn_defaults() -> dict[str, int]:
    """The runtime's figures the benchmark copies: DQN's adder batch and replay
    sizes and ``DistributedConfig.max_in_flight_inserts``.

    Keys: ``adder_batch_size``, ``max_replay_size``, ``min_replay_size``
    (items), ``max_in_flight_inserts`` (calls per client) and ``n_step``.
    """
    config = Config()
    return {
        "adder_batch_size": config.adder_batch_size,
        "max_replay_size": config.max_replay_size,
        "min_replay_size": config.min_replay_size,
        "max_in_flight_inserts": DistributedConfig().max_in_flight_inserts,
        "n_step": config.n_step,
    }


class _Capture:
    """A ``ReplayClient`` stand-in that keeps what the adder inserts."""

    def __init__(self) -> None:
        self.batches: list[Transition] = []

    def insert(self, items: Transition, priorities: np.ndarray | None = None) -> None:
        self.batches.append(items)


def make_batches(batch_size: int, num_batches: int = _NUM_BATCHES, seed: int = 0) -> list[Transition]:
    """Batches of ``batch_size`` DQN transitions made by the real n-step adder.

    The adder (DQN's n-step and discount) is fed gymnasium CartPole-v1 through
    the project's environment adapter, random int64 actions and
    ``{'policy_version': int64}`` extras, exactly what an env actor passes it;
    its ``max_batch_size`` is set to ``batch_size``. Leaves are stacked:
    observation f32[batch_size, 4], action int64[batch_size], and so on.
    """
    config = Config()
    environment = make_environment("gym:CartPole-v1", seed)
    capture = _Capture()
    adder = NStepTransitionAdder(capture, n_step=config.n_step, discount=config.discount, max_batch_size=batch_size)
    rng = np.random.default_rng(seed)
    timestep = environment.reset()
    adder.add_first(timestep)
    version = 0
    while len(capture.batches) < num_batches:
        action = np.int64(rng.integers(2))
        timestep = environment.step(action)
        adder.add(action, timestep, extras={"policy_version": np.int64(version // 100)})
        version += 1
        if timestep.last():
            timestep = environment.reset()
            adder.add_first(timestep)
    environment.close()
    return capture.batches


def flat_payloads(batches: Sequence[Transition]) -> list[np.ndarray]:
    """The same items as one uint8 array each, ``(batch, bytes per transition)``.

    Every leaf's rows are laid side by side, so a flat payload carries the
    same bytes and item count as its batch in a single leaf.
    """
    flat = []
    for batch in batches:
        leaves = [batch.observation, batch.action, batch.reward, batch.discount, batch.next_observation,
                  *batch.extras.values()]
        rows = [np.ascontiguousarray(leaf).reshape(leaf.shape[0], -1).view(np.uint8) for leaf in leaves]
        flat.append(np.concatenate(rows, axis=1))
    return flat
