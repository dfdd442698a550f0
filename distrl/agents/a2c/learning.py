"""The A2C learner: one batch of trajectory segments in, one gradient step out."""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
import tree

from distrl.agents.a2c.config import Config
from distrl.agents.a2c.losses import a2c_loss, gae
from distrl.agents.a2c.networks import ActorCritic
from distrl.agents.learning import TorchLearner
from distrl.agents.optimizers import make_adam
from distrl.types import SampleBatch, Trajectory
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger
from distrl.utils.tensors import to_tensor, to_tensors


class A2CLearner(TorchLearner):
    """Advantage actor-critic on fixed-length segments from a FIFO queue.

    Each ``step()`` takes one ``SampleBatch`` of B ``Trajectory`` segments
    (leaves [B, T, ...]) from ``dataset``, evaluates pi(. | o_t), V(o_t)
    and, without gradients, V(next_observation_t) with the current
    parameters, computes GAE(lambda) advantages and return targets
    (``losses.gae``), and applies one optimizer step to ``losses.a2c_loss``
    with the global gradient norm clipped to ``max_grad_norm``.

    Batches are assembled from what ``dataset`` yields (one round of
    segments per sample on Ray, the whole batch in the single-process
    mode): samples are taken until ``batch_size`` segments are fresh, the
    last one possibly overshooting by less than a sample. A segment is
    stale when the oldest weights that acted in it (its smallest
    ``policy_version``) trail the learner by more than ``max_policy_lag``
    updates; stale segments are dropped and counted
    (``charts/dropped_segments``). None accepts everything.

    The version of the parameters is the number of steps taken. The mean
    policy lag, learner version minus the ``policy_version`` the actors
    recorded for each step, is logged as ``charts/policy_lag`` (0 when
    synchronous). Batch leaves may be numpy arrays or torch tensors (e.g.
    from a prefetching iterator); they are only read. Also logs
    ``losses/policy_loss``, ``losses/value_loss`` and ``losses/entropy``.
    Publishes ``policy``.
    """

    def __init__(
        self,
        networks: ActorCritic,
        dataset: Iterator[SampleBatch],
        config: Config,
        counter: Counter | None = None,
        logger: Logger | None = None,
        device: torch.device = torch.device("cpu"),
        batch_size: int | None = None,
    ) -> None:
        """``batch_size``: segments per update; None: ``config.batch_size``, or ``envs_per_actor`` when that is None."""
        self._config = config
        self._batch_size = batch_size or config.batch_size or config.envs_per_actor
        self._dropped_segments = 0
        self._networks = networks.to(device)
        self._parameters = list(self._networks.parameters())
        if config.optimizer == "rmsprop":
            self._optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                self._parameters, lr=config.learning_rate, alpha=0.99, eps=config.optimizer_eps, foreach=True
            )
        else:
            self._optimizer = make_adam(self._parameters, config.learning_rate, device, eps=config.optimizer_eps)
        super().__init__(
            dataset=dataset,
            state={"networks": self._networks, "optimizer": self._optimizer},
            published={"policy": self._networks.policy},
            metric_names=("losses/policy_loss", "losses/value_loss", "losses/entropy", "charts/policy_lag"),
            log_every=config.log_every, counter=counter, logger=logger, device=device,
        )
        self._zero = torch.zeros((), device=device)

    @property
    def dropped_segments(self) -> int:
        """Segments dropped as stale so far."""
        return self._dropped_segments

    def _next_batch(self) -> Trajectory:
        """Samples until ``batch_size`` fresh segments are in hand (see the class docstring)."""
        pieces: list[Trajectory] = []
        segments = 0
        while segments < self._batch_size:
            data = to_tensors(next(self._dataset).data, self._device)
            fresh = self._fresh(data)
            if fresh is not None:
                self._dropped_segments += int(fresh.numel() - fresh.sum())
                data = tree.map_structure(lambda leaf: leaf[fresh], data)
            if data.mask.shape[0]:
                pieces.append(data)
                segments += int(data.mask.shape[0])
        if len(pieces) == 1:
            return pieces[0]
        return tree.map_structure(lambda *leaves: torch.cat(leaves), *pieces)

    def _fresh(self, data: Trajectory) -> torch.Tensor | None:
        """Per segment, True when it is fresh enough; None when all are (or no
        versions are recorded, or any lag is accepted)."""
        max_lag = self._config.max_policy_lag
        if max_lag is None or not isinstance(data.extras, Mapping) or "policy_version" not in data.extras:
            return None
        versions = torch.where(data.mask, data.extras["policy_version"], torch.iinfo(torch.int64).max)
        fresh = self._steps - versions.min(dim=1).values <= max_lag
        return None if bool(fresh.all()) else fresh

    def _update(self) -> Mapping[str, torch.Tensor]:
        data = self._next_batch()
        device, config = self._device, self._config
        observation = to_tensors(data.observation, device)
        next_observation = to_tensors(data.next_observation, device)
        action = to_tensor(data.action, device)
        if self._networks.discrete:
            action = action.long()
        mask = to_tensor(data.mask, device)
        distribution, values, next_values = self._networks.forward_with_bootstrap(observation, next_observation)
        with torch.no_grad():
            advantages, returns = gae(
                to_tensor(data.reward, device), to_tensor(data.discount, device), to_tensor(data.last, device),
                mask, values.detach(), next_values, config.discount, config.gae_lambda,
            )
        output = a2c_loss(
            distribution, values, action, advantages, returns, mask,
            config.value_coef, config.entropy_coef, config.normalize_advantages,
        )
        self._optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._parameters, config.max_grad_norm, foreach=True)
        self._optimizer.step()
        lag = self._zero
        if isinstance(data.extras, Mapping) and "policy_version" in data.extras:
            behaviour = to_tensor(data.extras["policy_version"], device)
            lag = self._steps - behaviour[mask].to(torch.float32).mean()
        return {
            "losses/policy_loss": output.policy_loss, "losses/value_loss": output.value_loss,
            "losses/entropy": output.entropy, "charts/policy_lag": lag,
        }

    def _log_extras(self) -> dict[str, float]:
        return {"charts/dropped_segments": float(self._dropped_segments)}
