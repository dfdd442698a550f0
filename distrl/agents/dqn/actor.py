"""DQN acting policies: epsilon-greedy for exploration (one environment, or N in
lockstep with one batched forward), greedy for evaluation, and Ape-X's table
of per-actor epsilons."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from distrl.agents.builder import BatchedPolicy, Policy
from distrl.networks.numpy_inference import compile_numpy_forward
from distrl.utils.nests import stacked_length
from distrl.utils.tensors import as_tensors, batch_of_one


def apex_epsilon(index: int, num_actors: int) -> float:
    """Ape-X's fixed epsilon of actor ``index`` of N: 0.4 ** (1 + 7 i / (N - 1)) (Horgan et al. 2018).

    Actor 0 explores most (0.4), the last nearly never (0.4 ** 8 ~ 6.6e-4),
    so the replay mixes broad exploration with near-greedy play. Defined for
    N >= 2; raises ValueError for one actor, for which the table has no
    spread (``DQNBuilder.actor_exploration`` gives it the config's schedule).
    """
    if num_actors < 2 or not 0 <= index < num_actors:
        raise ValueError(f"apex_epsilon needs 0 <= index < num_actors and num_actors >= 2, got {index}, {num_actors}")
    return 0.4 ** (1 + 7 * index / (num_actors - 1))


class GreedyPolicy(Policy):
    """a = argmax_a Q(s, a) for one observation.

    MLP Q-networks on the CPU are evaluated by a numpy forward pass over the
    same (shared-memory) parameters, about 5x cheaper per observation than a
    torch module call; other networks use torch. The greedy action of the
    numpy path is taken in Python (the first maximum, as ``np.argmax``):
    numpy's argmax releases the GIL, and in a Ray actor, whose Ray threads
    keep waiting for it, every release handed the GIL away; py-spy put 19% of
    a one-environment actor's thread in that hand-off. On its own it did not
    raise ``bench actor``'s one-environment ratio (0.30-0.34 at the default
    afterwards); with a 20 ms insert interval it reaches 0.47-0.49, where
    before the change the interval gave 0.33.
    """

    def __init__(self, q_network: nn.Module) -> None:
        self._q_network = q_network
        self._numpy_forward = compile_numpy_forward(q_network)

    def __call__(self, observation: np.ndarray) -> np.int64:
        if self._numpy_forward is not None:
            q_values = self._numpy_forward(observation).tolist()
            return np.int64(max(range(len(q_values)), key=q_values.__getitem__))
        with torch.inference_mode():
            q_values = self._q_network(batch_of_one(observation))
        return np.int64(q_values.argmax(dim=-1).item())


class EpsilonGreedyPolicy(GreedyPolicy):
    """With probability epsilon a uniform random action, else the greedy one.

    Epsilon decays linearly from ``epsilon_start`` to ``epsilon_end`` over
    ``decay_steps`` calls (env steps of this policy), then stays; a fixed
    epsilon is ``epsilon_start == epsilon_end``. A random action skips the
    network entirely, so early exploration costs almost nothing.
    """

    def __init__(
        self,
        q_network: nn.Module,
        num_actions: int,
        epsilon_start: float,
        epsilon_end: float,
        decay_steps: int,
        seed: int,
    ) -> None:
        super().__init__(q_network)
        self._num_actions = num_actions
        self._epsilon_start = epsilon_start
        self._epsilon_end = epsilon_end
        self._decay_steps = decay_steps
        self._rng = np.random.default_rng(seed)
        self._steps = 0

    @property
    def epsilon(self) -> float:
        """The epsilon of the next step: linear from start to end over ``decay_steps`` steps."""
        if self._steps >= self._decay_steps:
            return self._epsilon_end
        fraction = self._steps / self._decay_steps
        return self._epsilon_start + fraction * (self._epsilon_end - self._epsilon_start)

    def get_state(self) -> dict[str, Any]:
        """The schedule position and the random generator."""
        return {"steps": self._steps, "rng": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self._steps = int(state["steps"])
        self._rng.bit_generator.state = state["rng"]

    def exploration_state(self) -> dict[str, Any]:
        """The schedule and the epsilon the next step will use."""
        return {
            "kind": "epsilon_greedy", "epsilon": self.epsilon, "epsilon_start": self._epsilon_start,
            "epsilon_end": self._epsilon_end, "decay_steps": self._decay_steps, "steps": self._steps,
        }

    def __call__(self, observation: np.ndarray) -> np.int64:
        epsilon = self.epsilon
        self._steps += 1
        if self._rng.random() < epsilon:
            return np.int64(self._rng.integers(self._num_actions))
        return super().__call__(observation)


class BatchedEpsilonGreedyPolicy(EpsilonGreedyPolicy, BatchedPolicy):
    """Epsilon-greedy for N environments stepped in lockstep: one batched Q forward per vector step.

    ``select_actions(observations)`` takes N stacked observations (every leaf
    with a leading axis N, e.g. float32 [N, 4] for CartPole, uint8
    [N, 84, 84, 4] for Atari) and returns int64 actions of shape [N] (twice:
    the environments and the adders get the same actions). Row i is a
    uniform random action with probability epsilon_i, else
    argmax_a Q(s_i, a) from one forward pass of the Q network over all N
    rows; the forward is skipped when every row explores.

    The epsilon schedule counts env steps as ``EpsilonGreedyPolicy`` does,
    one per observation: row i of a call made after s env steps uses the
    epsilon of step s + i, and the call advances the count by N. So an actor
    follows its schedule (or, with a fixed ``exploration``, its Ape-X epsilon,
    Horgan et al. 2018) over the env steps of all its environments together,
    and every environment of one actor explores at that actor's epsilon
    (vectorised acting as in Sample Factory or CleanRL's vector envs). The
    state (``get_state``: schedule position and generator) and
    ``exploration_state`` are the single-environment policy's, so
    checkpoints and run summaries read the same; ``__call__`` acts for one
    observation exactly as ``EpsilonGreedyPolicy`` does.
    """

    def epsilons(self, num_envs: int) -> np.ndarray:
        """float64 [num_envs]: the epsilons of the next ``num_envs`` env steps (steps s, ..., s + N - 1)."""
        steps = self._steps + np.arange(num_envs)
        if self._decay_steps <= 0:
            return np.full(num_envs, self._epsilon_end)
        fraction = steps / self._decay_steps
        scheduled = self._epsilon_start + fraction * (self._epsilon_end - self._epsilon_start)
        return np.where(steps >= self._decay_steps, self._epsilon_end, scheduled)

    def greedy_actions(self, observations: Any) -> np.ndarray:
        """int64 [N]: argmax_a Q(s_i, a) for N stacked observations, one forward pass."""
        if self._numpy_forward is not None:
            q_values = self._numpy_forward(observations)
        else:
            with torch.inference_mode():
                q_values = self._q_network(as_tensors(observations)).numpy()
        return q_values.argmax(axis=-1).astype(np.int64, copy=False)

    def select_actions(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        num_envs = stacked_length(observations)
        explore = self._rng.random(num_envs) < self.epsilons(num_envs)
        self._steps += num_envs
        actions = self._rng.integers(self._num_actions, size=num_envs, dtype=np.int64)
        if not explore.all():
            actions = np.where(explore, actions, self.greedy_actions(observations))
        return actions, actions
