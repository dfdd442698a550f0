"""The DQN learner: one batch in, one gradient step out."""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch

from distrl.agents.dqn.config import Config
from distrl.agents.dqn.losses import double_q_td_loss
from distrl.agents.dqn.networks import DQNNetworks
from distrl.agents.learning import TorchLearner
from distrl.agents.optimizers import make_adam
from distrl.networks.target import hard_update_, make_target
from distrl.replay.client import ReplayClient
from distrl.types import SampleBatch
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.utils.tensors import to_tensor, to_tensors


class DQNLearner(TorchLearner):
    """Double-Q learning (van Hasselt et al. 2016) from replayed n-step transitions.

    Each ``step()`` takes one ``SampleBatch`` from ``dataset`` (leaves [B, ...],
    B = ``config.batch_size``), applies one Adam update of the importance-weighted
    Huber TD loss (``losses.double_q_td_loss``) with the global gradient norm
    clipped to ``max_grad_norm``, copies the online net into the target net
    every ``target_update_period`` updates and, with prioritized replay, sends
    |TD error| + ``priority_eps`` back as the sampled items' new priorities
    (the client does not wait). Logs ``losses/td_loss`` and
    ``losses/q_values`` (mean Q(s, a) of the batch). Publishes ``q_network``.
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
        self._q_network = networks.q_network.to(device)
        self._target_network = make_target(self._q_network)
        self._optimizer = make_adam(self._q_network.parameters(), config.learning_rate, device, eps=config.adam_eps)
        self._replay_client = replay_client
        super().__init__(
            dataset=dataset,
            state={"q_network": self._q_network, "target_network": self._target_network,
                   "optimizer": self._optimizer},
            published={"q_network": self._q_network},
            metric_names=("losses/td_loss", "losses/q_values"),
            log_every=config.log_every, counter=counter, logger=logger, device=device,
        )

    def _update(self) -> Mapping[str, torch.Tensor]:
        sample = next(self._dataset)
        data = sample.data
        device, config = self._device, self._config
        output = double_q_td_loss(
            self._q_network,
            self._target_network,
            observation=to_tensors(data.observation, device),
            action=to_tensor(data.action, device),
            reward=to_tensor(data.reward, device),
            discount=to_tensor(data.discount, device),
            next_observation=to_tensors(data.next_observation, device),
            weights=to_tensor(sample.weights.astype(np.float32, copy=False), device),
            double_q=config.double_q,
            huber_delta=config.huber_delta,
        )
        self._optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._q_network.parameters(), config.max_grad_norm, foreach=True)
        self._optimizer.step()
        if (self.steps + 1) % config.target_update_period == 0:
            hard_update_(self._target_network, self._q_network)
        if config.prioritized and self._replay_client is not None:
            priorities = output.td_error.abs().cpu().numpy().astype(np.float64) + config.priority_eps
            self._replay_client.update_priorities(sample.keys, priorities)
        return {"losses/td_loss": output.loss.detach(), "losses/q_values": output.q_mean}
