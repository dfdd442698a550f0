"""The DQN learner: one batch in, one gradient step out."""

from __future__ import annotations

import copy
import time
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from distrl.agents.dqn.config import Config
from distrl.agents.dqn.losses import double_q_td_loss
from distrl.agents.dqn.networks import DQNNetworks
from distrl.core import Learner
from distrl.networks.target import hard_update_, make_target
from distrl.replay.client import ReplayClient, SampleBatch
from distrl.types import Versioned
from distrl.variables.snapshots import ParameterSnapshots
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger, NullLogger
from distrl.utils.tensors import to_tensor


class DQNLearner(Learner):
    """Double-Q learning from replayed n-step transitions.

    Each ``step()`` takes one ``SampleBatch`` from ``dataset``, applies one
    Adam update of the TD loss, copies the online net into the target net
    every ``target_update_period`` steps and, with prioritized replay, sends
    |TD error| + eps back as new priorities (the client does not wait).
    """

    def __init__(
        self,
        networks: DQNNetworks,
        dataset: Iterator[SampleBatch],
        config: Config,
        replay_client: ReplayClient | None = None,
        counter: Counter | None = None,
        logger: Logger | None = None,
        device: torch.device = torch.device("cpu"),
    ) -> None:
        self._config = config
        self._device = device
        self._q_network = networks.q_network.to(device)
        self._target_network = make_target(self._q_network)
        self._optimizer = torch.optim.Adam(
            self._q_network.parameters(), lr=config.learning_rate, eps=config.adam_eps
        )
        self._dataset = dataset
        self._replay_client = replay_client
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._steps = 0
        self._loss_sum = torch.zeros((), device=device)
        self._q_sum = torch.zeros((), device=device)
        self._last_log_time = time.perf_counter()
        self._snapshots = ParameterSnapshots({"q_network": self._q_network}, "DQN learner")

    @property
    def steps(self) -> int:
        return self._steps

    def step(self) -> Mapping[str, float]:
        sample = next(self._dataset)
        data = sample.data
        device = self._device
        output = double_q_td_loss(
            self._q_network,
            self._target_network,
            observation=to_tensor(data.observation, device),
            action=to_tensor(data.action, device),
            reward=to_tensor(data.reward, device),
            discount=to_tensor(data.discount, device),
            next_observation=to_tensor(data.next_observation, device),
            weights=to_tensor(sample.weights.astype(np.float32, copy=False), device),
            double_q=self._config.double_q,
            huber_delta=self._config.huber_delta,
        )
        self._optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        if self._config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._q_network.parameters(), self._config.max_grad_norm, foreach=True)
        self._optimizer.step()
        self._steps += 1
        if self._steps % self._config.target_update_period == 0:
            hard_update_(self._target_network, self._q_network)
        if self._config.prioritized and self._replay_client is not None:
            priorities = output.td_error.abs().cpu().numpy().astype(np.float64) + self._config.priority_eps
            self._replay_client.update_priorities(sample.keys, priorities)
        self._loss_sum += output.loss.detach()
        self._q_sum += output.q_mean
        if self._steps % self._config.log_every == 0:
            return self._log()
        return {}

    def _log(self) -> dict[str, float]:
        now = time.perf_counter()
        n = self._config.log_every
        metrics = {
            "losses/td_loss": float(self._loss_sum.item()) / n,
            "losses/q_values": float(self._q_sum.item()) / n,
            "charts/learner_steps": float(self._steps),
            "charts/updates_per_s": n / max(now - self._last_log_time, 1e-9),
        }
        self._loss_sum.zero_()
        self._q_sum.zero_()
        self._last_log_time = now
        counts = self._counter.increment(learner_steps=n)
        self._logger.write(metrics, env_steps=int(counts.get("env_steps", 0)))
        return metrics

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        """Returns the online Q-network's parameters as numpy, cached per version."""
        return self._snapshots.get(self._steps, names)

    def save(self) -> Mapping[str, Any]:
        """A deep copy of the learner's state, safe to keep while training goes on."""
        return copy.deepcopy({
            "q_network": self._q_network.state_dict(),
            "target_network": self._target_network.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "steps": self._steps,
            "torch_rng": torch.get_rng_state(),
        })

    def restore(self, state: Mapping[str, Any]) -> None:
        self._q_network.load_state_dict(state["q_network"])
        self._target_network.load_state_dict(state["target_network"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._steps = int(state["steps"])
        torch.set_rng_state(state["torch_rng"])
        self._snapshots.invalidate()
