"""The DDPG learner: one batch in, one critic step and one actor step out."""

from __future__ import annotations

import copy
import time
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from distrl.agents.ddpg.config import Config
from distrl.agents.ddpg.losses import actor_loss, critic_td_loss
from distrl.agents.ddpg.networks import DDPGNetworks
from distrl.core import Learner
from distrl.networks.target import make_target, polyak_update_
from distrl.replay.client import SampleBatch
from distrl.types import Versioned
from distrl.variables.snapshots import ParameterSnapshots
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger, NullLogger
from distrl.utils.tensors import to_tensor


def make_adam(parameters: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused single-kernel update where torch has one for ``device``
    (CPU and CUDA): for these small networks the per-tensor loop of the default
    implementation is a visible share of a learner step."""
    parameters = list(parameters)
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(parameters, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(parameters, lr=lr)


class DDPGLearner(Learner):
    """DDPG (Lillicrap et al. 2016) from replayed n-step transitions.

    Each ``step()`` takes one ``SampleBatch`` from ``dataset`` and

    1. moves the critic Q one Adam step down the TD loss
       mean (Q(s, a) - y)^2 with y = R + D * Q'(s', mu'(s'))
       (see ``losses.critic_td_loss``);
    2. moves the actor mu one Adam step down -mean Q(s, mu(s)), evaluated
       with the critic just updated (``losses.actor_loss``); autograd
       computes gradients for the actor's parameters only;
    3. moves both targets towards their online nets,
       theta' <- (1 - tau) theta' + tau theta.

    Each network's gradient norm is clipped to ``max_grad_norm`` when set.
    Metrics accumulate as tensors and are read once per ``log_every`` steps.
    """

    def __init__(
        self,
        networks: DDPGNetworks,
        dataset: Iterator[SampleBatch],
        config: Config,
        counter: Counter | None = None,
        logger: Logger | None = None,
        device: torch.device = torch.device("cpu"),
    ) -> None:
        self._config = config
        self._device = device
        self._policy = networks.policy_network.to(device)
        self._critic = networks.critic_network.to(device)
        self._target_policy = make_target(self._policy)
        self._target_critic = make_target(self._critic)
        # Both pairs in one container, so one polyak_update_ call moves both targets.
        self._online_pair = nn.ModuleList([self._critic, self._policy])
        self._target_pair = nn.ModuleList([self._target_critic, self._target_policy])
        self._policy_params = list(self._policy.parameters())
        self._critic_params = list(self._critic.parameters())
        self._policy_optimizer = make_adam(self._policy_params, config.actor_learning_rate, device)
        self._critic_optimizer = make_adam(self._critic_params, config.critic_learning_rate, device)
        self._dataset = dataset
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._steps = 0
        self._critic_loss_sum = torch.zeros((), device=device)
        self._actor_loss_sum = torch.zeros((), device=device)
        self._q_sum = torch.zeros((), device=device)
        self._last_log_time = time.perf_counter()
        self._snapshots = ParameterSnapshots({"policy": self._policy}, "DDPG learner")

    @property
    def steps(self) -> int:
        return self._steps

    def step(self) -> Mapping[str, float]:
        data = next(self._dataset).data
        device = self._device
        config = self._config
        observation = to_tensor(data.observation, device)

        critic_output = critic_td_loss(
            self._critic,
            self._target_policy,
            self._target_critic,
            observation=observation,
            action=to_tensor(data.action, device),
            reward=to_tensor(data.reward, device),
            discount=to_tensor(data.discount, device),
            next_observation=to_tensor(data.next_observation, device),
        )
        self._critic_optimizer.zero_grad(set_to_none=True)
        critic_output.loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_params, config.max_grad_norm, foreach=True)
        self._critic_optimizer.step()

        policy_loss = actor_loss(self._policy, self._critic, observation)
        self._policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward(inputs=self._policy_params)
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._policy_params, config.max_grad_norm, foreach=True)
        self._policy_optimizer.step()

        polyak_update_(self._target_pair, self._online_pair, config.tau)
        self._steps += 1

        self._critic_loss_sum += critic_output.loss.detach()
        self._actor_loss_sum += policy_loss.detach()
        self._q_sum += critic_output.q_mean
        if self._steps % config.log_every == 0:
            return self._log()
        return {}

    def _log(self) -> dict[str, float]:
        now = time.perf_counter()
        n = self._config.log_every
        metrics = {
            "losses/critic_loss": float(self._critic_loss_sum.item()) / n,
            "losses/actor_loss": float(self._actor_loss_sum.item()) / n,
            "losses/q_values": float(self._q_sum.item()) / n,
            "charts/learner_steps": float(self._steps),
            "charts/updates_per_s": n / max(now - self._last_log_time, 1e-9),
        }
        self._critic_loss_sum.zero_()
        self._actor_loss_sum.zero_()
        self._q_sum.zero_()
        self._last_log_time = now
        counts = self._counter.increment(learner_steps=n)
        self._logger.write(metrics, env_steps=int(counts.get("env_steps", 0)))
        return metrics

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        """Returns the online actor's parameters as numpy under 'policy', cached per version."""
        return self._snapshots.get(self._steps, names)

    def save(self) -> Mapping[str, Any]:
        """A deep copy of the full state, unaffected by later steps."""
        return copy.deepcopy({
            "policy": self._policy.state_dict(),
            "critic": self._critic.state_dict(),
            "target_policy": self._target_policy.state_dict(),
            "target_critic": self._target_critic.state_dict(),
            "policy_optimizer": self._policy_optimizer.state_dict(),
            "critic_optimizer": self._critic_optimizer.state_dict(),
            "steps": self._steps,
            "torch_rng": torch.get_rng_state(),
        })

    def restore(self, state: Mapping[str, Any]) -> None:
        self._policy.load_state_dict(state["policy"])
        self._critic.load_state_dict(state["critic"])
        self._target_policy.load_state_dict(state["target_policy"])
        self._target_critic.load_state_dict(state["target_critic"])
        self._policy_optimizer.load_state_dict(state["policy_optimizer"])
        self._critic_optimizer.load_state_dict(state["critic_optimizer"])
        self._steps = int(state["steps"])
        torch.set_rng_state(state["torch_rng"])
        self._snapshots.invalidate()
