"""What torch alone allows: the DQN update of the same network and batch in a bare loop.

``bench system`` reports the distributed learner's updates per second against
this rate, measured in the same run on the same machine, so the ratio shows
what the runtime (sampling calls, deserialisation, copies, publishing weights,
stats, the Python around the update) costs on top of the update itself. The
loop builds the agent's own networks and optimizer from the same config and
computes the same loss (``double_q_td_loss``: double Q, Huber, n-step
discounts), with gradient clipping and target copies as ``DQNLearner`` does,
on one fixed random batch that never leaves the device: nothing but the update.
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

import numpy as np
import torch
import tree

from distrl.agents.dqn.losses import double_q_td_loss
from distrl.agents.optimizers import make_adam


def _random_batch(spec_nest, batch_size: int, rng: np.random.Generator):
    """A batch of ``batch_size`` values of every leaf of an observation spec, as tensors of the
    leaf's dtype (integer leaves within their bounds, uint8 frames 0-255; floats standard
    normal), for networks that only need the shapes and dtypes."""
    def leaf(spec):
        shape = (batch_size, *spec.shape)
        if np.issubdtype(spec.dtype, np.integer):
            high = int(getattr(spec, "maximum", 255)) if np.ndim(getattr(spec, "maximum", 0)) == 0 else 255
            return torch.from_numpy(rng.integers(0, max(high, 1) + 1, size=shape).astype(spec.dtype))
        return torch.from_numpy(rng.standard_normal(shape).astype(spec.dtype))
    return tree.map_structure(leaf, spec_nest)


def pure_dqn_updates_per_s(env: str, overrides: Sequence[str], seconds: float, seed: int = 0,
                           device: str = "cpu") -> float:
    """DQN updates per second of a bare torch loop for ``env`` with the DQN config ``overrides``,
    on one torch thread (as the learner runs) and on ``device`` (the learner's): the agent's
    networks, the learner's Adam (``make_adam``), ``double_q_td_loss``, gradient clipping, a hard target copy every
    ``target_update_period`` updates."""
    from distrl.experiments import make_experiment_config
    from distrl.specs import make_environment_spec

    config = make_experiment_config("dqn", env, seed=seed, max_env_steps=10**9, agent_overrides=list(overrides))
    dqn = config.agent_config
    probe = config.environment_factory(seed)
    spec = make_environment_spec(probe)
    probe.close()
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        networks = config.network_factory(spec)
        q_network = networks.q_network.to(device)
        target = copy.deepcopy(q_network)
        optimizer = make_adam(q_network.parameters(), dqn.learning_rate, torch.device(device), eps=dqn.adam_eps)
        rng = np.random.default_rng(seed)
        batch = dqn.batch_size
        def on_device(nest):
            return tree.map_structure(lambda tensor: tensor.to(device), nest)

        observation = on_device(_random_batch(spec.observations, batch, rng))
        next_observation = on_device(_random_batch(spec.observations, batch, rng))
        action = on_device(torch.from_numpy(rng.integers(0, networks.num_actions, size=batch)))
        reward = on_device(torch.from_numpy(rng.standard_normal(batch).astype(np.float32)))
        discount = torch.full((batch,), dqn.discount ** dqn.n_step, device=device)
        weights = torch.ones(batch, device=device)
        updates = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(16):
                output = double_q_td_loss(q_network, target, observation, action, reward, discount,
                                          next_observation, weights, dqn.double_q, dqn.huber_delta)
                optimizer.zero_grad(set_to_none=True)
                output.loss.backward()
                if dqn.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(q_network.parameters(), dqn.max_grad_norm, foreach=True)
                optimizer.step()
                updates += 1
                if updates % dqn.target_update_period == 0:
                    target.load_state_dict(q_network.state_dict())
            if device != "cpu":
                torch.cuda.synchronize()
        return updates / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
