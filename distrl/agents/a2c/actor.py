"""A2C acting: sampling pi(. | s) for training, its mode for evaluation, and
the synchronous actor that waits for each new weight version.

Sampling uses the policy's own numpy generator (seeded per actor), never
torch's global one, so acting is reproducible and independent of learning.
MLP policies on the CPU act through ``compile_numpy_forward`` (a numpy
forward pass over the same parameters, several times cheaper than a torch
module call for a handful of observations); other networks use torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from distrl.adders.base import Adder
from distrl.utils.nests import index_nest, stack_nests
from distrl.agents.a2c.networks import ActorCritic
from distrl.agents.actors import BatchedFeedForwardActor
from distrl.agents.builder import BatchedPolicy, Policy
from distrl.networks.numpy_inference import compile_numpy_forward
from distrl.utils.tensors import as_tensors
from distrl.variables.client import VariableClient


class _PolicyParameters:
    """Computes the policy's distribution parameters as numpy: the logits
    (discrete) or the mean and standard deviation (Gaussian), for
    observations with any leading batch axes (none for one observation)."""

    def __init__(self, network: ActorCritic) -> None:
        self._policy = network.policy
        self.discrete = network.discrete
        head = network.policy.head
        state_independent = self.discrete or not head.state_dependent_std
        self._numpy_forward = compile_numpy_forward(network.policy) if state_independent else None

    def logits(self, observations: Any) -> np.ndarray:
        if self._numpy_forward is not None:
            return self._numpy_forward(observations)
        with torch.inference_mode():
            return self._policy(as_tensors(observations)).logits.numpy()

    def mean(self, observations: Any) -> np.ndarray:
        if self._numpy_forward is not None:
            return self._numpy_forward(observations)
        with torch.inference_mode():
            return self._policy(as_tensors(observations)).base_dist.loc.numpy()

    def mean_std(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._numpy_forward is not None:
            head = self._policy.head
            with torch.no_grad():
                log_std = head.log_std.clamp(head.min_log_std, head.max_log_std)
            return self._numpy_forward(observations), log_std.exp().numpy()
        with torch.inference_mode():
            normal = self._policy(as_tensors(observations)).base_dist
            return normal.loc.numpy(), normal.scale.numpy()


def _component_splits(nvec: tuple[int, ...] | None) -> list[int] | None:
    """Where the concatenated logits of a MultiDiscrete action split into components."""
    return None if nvec is None else np.cumsum(nvec)[:-1].tolist()


class SamplingPolicy(Policy, BatchedPolicy):
    """a ~ pi(. | s), batched (``select_actions``) or for one observation (``__call__``).

    Discrete: a categorical sample by inverse CDF, a = #{k : F_k < u * F_K}
    with F the cumulative sums of exp(logits - max logits) and u ~ U[0, 1);
    MultiDiscrete: one such sample per component (int64 [N, k]).
    Continuous: a Gaussian sample a = mu(s) + sigma * eps, eps ~ N(0, I);
    the environments get it clipped to the action bounds, the adders record
    it unclipped (the learner needs log pi of the action actually sampled).
    """

    def __init__(self, network: ActorCritic, seed: int) -> None:
        self._parameters = _PolicyParameters(network)
        self._discrete = network.discrete
        self._splits = _component_splits(network.action_nvec)
        self._minimum = network.action_minimum
        self._maximum = network.action_maximum
        self._rng = np.random.default_rng(seed)

    def exploration_state(self) -> dict[str, Any]:
        """A2C explores by sampling pi itself."""
        return {"kind": "sampling"}

    def get_state(self) -> dict[str, Any]:
        """The sampling generator."""
        return {"rng": self._rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]

    def select_actions(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._discrete:
            logits = self._parameters.logits(observations).astype(np.float64)
            if self._splits is None:
                actions = self._sample_categorical(logits)
            else:
                actions = np.stack([self._sample_categorical(part) for part in np.split(logits, self._splits, -1)], -1)
            return actions, actions
        mean, std = self._parameters.mean_std(observations)
        sample = (mean + std * self._rng.standard_normal(mean.shape)).astype(np.float32)
        return np.clip(sample, self._minimum, self._maximum), sample

    def _sample_categorical(self, logits: np.ndarray) -> np.ndarray:
        """One inverse-CDF sample per row of float64 logits [N, n] -> int64 [N]."""
        cdf = np.cumsum(np.exp(logits - logits.max(axis=-1, keepdims=True)), axis=-1)
        u = self._rng.random((cdf.shape[0], 1)) * cdf[:, -1:]
        return np.minimum((cdf < u).sum(axis=-1), cdf.shape[-1] - 1).astype(np.int64)

    def __call__(self, observation: Any) -> Any:
        actions, _ = self.select_actions(stack_nests([observation]))
        return index_nest(actions, 0)


class GreedyPolicy(Policy):
    """The policy's mode: argmax_a pi(a | s), or the Gaussian mean clipped to the bounds."""

    def __init__(self, network: ActorCritic) -> None:
        self._parameters = _PolicyParameters(network)
        self._discrete = network.discrete
        self._splits = _component_splits(network.action_nvec)
        self._minimum = network.action_minimum
        self._maximum = network.action_maximum

    def __call__(self, observation: Any) -> Any:
        if self._discrete:
            logits = self._parameters.logits(observation)
            if self._splits is not None:
                return np.array([part.argmax() for part in np.split(logits, self._splits)], dtype=np.int64)
            return np.int64(logits.argmax())
        return np.clip(self._parameters.mean(observation), self._minimum, self._maximum).astype(np.float32)


class SynchronousActor(BatchedFeedForwardActor):
    """A batched actor that acts in lockstep with the learner (``max_policy_lag`` 0).

    After every ``round_length`` vector steps (T, one segment per
    environment: a round) it waits, before its next action, for weights
    newer than those that acted in the round, i.e. for the update the round
    feeds. In the single-process mode the learner has already stepped by
    then and nothing waits; on Ray the actor waits for the weight store's
    next version (``VariableClient.update_to_newer``), so every segment the
    learner receives comes from its current weights.
    """

    def __init__(
        self, policy: BatchedPolicy, adders: list[Adder], variable_client: VariableClient, round_length: int
    ) -> None:
        super().__init__(policy, adders, variable_client)
        self._variable_client: VariableClient = variable_client
        self._round_length = int(round_length)
        self._steps_in_round = 0
        self._round_version = -1

    def select_actions(self, observations: Any) -> Any:
        if self._steps_in_round == self._round_length:
            if self._variable_client.version <= self._round_version:
                self._variable_client.update_to_newer()
            self._steps_in_round = 0
        if self._steps_in_round == 0:
            self._round_version = self._variable_client.version
        self._steps_in_round += 1
        return super().select_actions(observations)
