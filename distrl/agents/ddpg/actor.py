"""DDPG acting policies and exploration noise.

Evaluation acts with a = mu(s). Exploration acts with

    a = clip(mu(s) + h * n_t, low, high),    h = (high - low) / 2,

where n_t is Gaussian or Ornstein-Uhlenbeck noise in units of the action
half-range h, so one ``noise_sigma`` means the same on every environment.
Each exploring policy owns a seeded ``np.random.Generator``, so runs are
reproducible and distributed actors draw independent noise. An actor
stepping N environments in lockstep acts through ``BatchedNoisyPolicy``: one
batched forward of mu, and a noise of shape [N, *action_shape] whose rows
are N independent streams, each restarted with its own environment's
episodes.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from distrl.agents.builder import BatchedPolicy, Policy
from distrl.utils.nests import stacked_length
from distrl.utils.tensors import as_tensors, batch_of_one


def spread_noise_scale(index: int, num_actors: int) -> float:
    """The noise scale of actor ``index`` of N: 2 ** (1 - 2 i / (N - 1)), 1 for N = 1.

    Actor 0 explores with twice the configured sigma, the last with half,
    geometrically spaced in between (see ``Config.actor_noise_scales``).
    Raises ValueError for an index outside [0, N).
    """
    if not 0 <= index < num_actors:
        raise ValueError(f"spread_noise_scale needs 0 <= index < num_actors, got {index}, {num_actors}")
    if num_actors == 1:
        return 1.0
    return 2.0 ** (1 - 2 * index / (num_actors - 1))


class Noise(abc.ABC):
    """Exploration noise: one sample per env step, reset at episode start.

    ``sigma`` has the action's shape, or [N, *action_shape] for N environments
    stepped in lockstep (row i is environment i's stream).
    """

    sigma: np.ndarray
    _rng: np.random.Generator

    @abc.abstractmethod
    def sample(self) -> np.ndarray:
        """Returns the noise for the next step (float64, ``sigma``'s shape)."""

    def reset(self) -> None:
        """Starts a new episode (of every stream)."""

    def reset_row(self, index: int) -> None:
        """Starts a new episode of stream ``index`` alone (``sigma`` of shape [N, ...])."""

    def get_state(self) -> dict[str, Any]:
        """The random generator's state (and the process's, for a noise with memory)."""
        return {"rng": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_state`` output."""
        self._rng.bit_generator.state = state["rng"]

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """``gaussian`` or ``ou``, for reports."""


class GaussianNoise(Noise):
    """n_t ~ N(0, sigma^2) independently per step and action dimension."""

    kind = "gaussian"

    def __init__(self, sigma: np.ndarray, rng: np.random.Generator) -> None:
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self._rng = rng

    def sample(self) -> np.ndarray:
        return self.sigma * self._rng.standard_normal(self.sigma.shape)


class OrnsteinUhlenbeckNoise(Noise):
    """Temporally correlated noise: the OU process dx = theta (mu - x) dt + sigma dW
    with mu = 0, sampled every ``dt`` units of time with its exact transition

        x_{t+1} = x_t exp(-theta dt) + sigma sqrt((1 - exp(-2 theta dt)) / (2 theta)) eps_t,

    eps_t ~ N(0, 1), which for small dt is the Euler-Maruyama step
    x + theta (0 - x) dt + sigma sqrt(dt) eps used by the DDPG paper's
    implementations (they differ by O(theta dt), 0.15% at dt = 1e-2) but
    keeps the stationary distribution N(0, sigma^2 / (2 theta)) exact for any dt.
    The correlation time is 1 / (theta dt) steps: 667 steps at theta = 0.15,
    dt = 1e-2 (a slowly drifting offset within an episode), 6.7 steps at dt = 1.
    ``reset`` returns x to 0 (the start of each episode).
    """

    kind = "ou"

    def __init__(self, sigma: np.ndarray, theta: float, dt: float, rng: np.random.Generator) -> None:
        if theta <= 0 or dt <= 0:
            raise ValueError(f"theta and dt must be > 0, got theta={theta}, dt={dt}")
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.theta = float(theta)
        self.dt = float(dt)
        self._decay = math.exp(-theta * dt)
        self._step_scale = self.sigma * math.sqrt(-math.expm1(-2.0 * theta * dt) / (2.0 * theta))
        self._rng = rng
        self._state = np.zeros_like(self.sigma)

    @property
    def stationary_std(self) -> np.ndarray:
        """sigma / sqrt(2 theta), the standard deviation the process settles at."""
        return self.sigma / math.sqrt(2.0 * self.theta)

    def sample(self) -> np.ndarray:
        self._state = self._decay * self._state + self._step_scale * self._rng.standard_normal(self.sigma.shape)
        return self._state

    def reset(self) -> None:
        self._state = np.zeros_like(self.sigma)

    def reset_row(self, index: int) -> None:
        self._state[index] = 0.0

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "ou": self._state.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_state`` output. Raises ValueError when the saved process has another
        shape than ``sigma`` (a state saved with another ``envs_per_actor`` or action shape)."""
        if "ou" in state:
            saved = np.array(state["ou"], dtype=np.float64)
            if saved.shape != self.sigma.shape:
                raise ValueError(f"OrnsteinUhlenbeckNoise state of shape {saved.shape} cannot be restored into "
                                 f"noise of shape {self.sigma.shape} (saved with another envs_per_actor?)")
            self._state = saved
        super().set_state(state)


class DeterministicPolicy(Policy):
    """a = mu(s) for one observation, as a float32 array of the action's shape."""

    def __init__(self, policy_network: nn.Module) -> None:
        self._policy_network = policy_network

    @torch.inference_mode()
    def _mu(self, observation: np.ndarray) -> np.ndarray:
        action = self._policy_network(batch_of_one(observation))
        return action[0].numpy()

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        return self._mu(observation)


class NoisyPolicy(DeterministicPolicy):
    """a = clip(mu(s) + noise, low, high); the noise restarts at every ``reset``.

    ``noise`` is already in action units (the builder scales it by the
    half-range and the actor's exploration level).
    """

    def __init__(
        self, policy_network: nn.Module, noise: Noise, action_minimum: np.ndarray, action_maximum: np.ndarray
    ) -> None:
        super().__init__(policy_network)
        self.noise = noise
        self._low = np.asarray(action_minimum, dtype=np.float32)
        self._high = np.asarray(action_maximum, dtype=np.float32)

    def reset(self) -> None:
        self.noise.reset()

    def get_state(self) -> dict[str, Any]:
        """The noise's random generator and its process state (OU's current value)."""
        return self.noise.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state)

    def exploration_state(self) -> dict[str, Any]:
        """The noise process and its sigma per action dimension (action units)."""
        return {"kind": self.noise.kind, "sigma": self.noise.sigma.tolist()}

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        action = self._mu(observation) + self.noise.sample()
        return np.clip(action, self._low, self._high).astype(np.float32, copy=False)


class BatchedNoisyPolicy(NoisyPolicy, BatchedPolicy):
    """a_i = clip(mu(s_i) + n_i, low, high) for N environments stepped in lockstep.

    ``select_actions(observations)`` takes N stacked observations (every leaf
    with a leading axis N, e.g. float32 [N, 3] for Pendulum) and returns
    float32 actions [N, *action_shape] (twice: the environments and the
    adders get the same clipped actions, as ``NoisyPolicy`` gives one) from
    one forward pass of mu over all N rows. ``noise`` has sigma of shape
    [N, *action_shape]: row i is environment i's stream, restarted by
    ``reset_env(i)`` when that environment starts an episode, so an
    Ornstein-Uhlenbeck stream never carries over from another environment's
    episode. Every environment of one actor explores at that actor's noise
    scale (``DDPGBuilder.actor_exploration``). ``__call__`` acts for one
    observation as environment 0 would (every stream's noise advances).
    """

    def __init__(
        self, policy_network: nn.Module, noise: Noise, action_minimum: np.ndarray, action_maximum: np.ndarray
    ) -> None:
        super().__init__(policy_network, noise, action_minimum, action_maximum)
        self.num_envs = int(noise.sigma.shape[0])

    def reset_env(self, index: int) -> None:
        self.noise.reset_row(index)

    def exploration_state(self) -> dict[str, Any]:
        """The noise process, the sigma of each environment's stream (action units; the same for
        all) and the number of streams."""
        return {"kind": self.noise.kind, "sigma": self.noise.sigma[0].tolist(), "streams": self.num_envs}

    def select_actions(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        num_envs = stacked_length(observations)
        if num_envs != self.num_envs:
            raise ValueError(f"BatchedNoisyPolicy has noise for {self.num_envs} environments, got "
                             f"{num_envs} observations")
        with torch.inference_mode():
            mu = self._policy_network(as_tensors(observations)).numpy()
        actions = np.clip(mu + self.noise.sample(), self._low, self._high).astype(np.float32, copy=False)
        return actions, actions

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            mu = self._policy_network(batch_of_one(observation))[0].numpy()
        return np.clip(mu + self.noise.sample()[0], self._low, self._high).astype(np.float32, copy=False)
