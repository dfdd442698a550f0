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


def random_leaves(spec_nest, batch_size: int, rng: np.random.Generator):
    """``batch_size`` random values of every leaf of an observation spec, as numpy arrays of the
    leaf's dtype [batch_size, *shape] (integer leaves within their bounds, uint8 frames 0-255;
    floats standard normal), for networks that only need the shapes and dtypes."""
    def leaf(spec):
        shape = (batch_size, *spec.shape)
        if np.issubdtype(spec.dtype, np.integer):
            high = int(getattr(spec, "maximum", 255)) if np.ndim(getattr(spec, "maximum", 0)) == 0 else 255
            return rng.integers(0, max(high, 1) + 1, size=shape).astype(spec.dtype)
        return rng.standard_normal(shape).astype(spec.dtype)
    return tree.map_structure(leaf, spec_nest)


def dqn_experiment(env: str, overrides: Sequence[str], seed: int):
    """The DQN experiment config for ``env`` with the config ``overrides``, and the environment's
    spec (read from one environment, closed again)."""
    from distrl.experiments import make_experiment_config
    from distrl.specs import make_environment_spec

    config = make_experiment_config("dqn", env, seed=seed, max_env_steps=10**9, agent_overrides=list(overrides))
    probe = config.environment_factory(seed)
    try:
        return config, make_environment_spec(probe)
    finally:
        probe.close()


def pure_dqn_updates_per_s(env: str, overrides: Sequence[str], seconds: float, seed: int = 0,
                           device: str = "cpu") -> float:
    """DQN updates per second of a bare torch loop for ``env`` with the DQN config ``overrides``,
    on one torch thread (as the learner runs) and on ``device`` (the learner's): the agent's
    networks, the learner's Adam (``make_adam``), ``double_q_td_loss``, gradient clipping, a hard target copy every
    ``target_update_period`` updates."""
    config, spec = dqn_experiment(env, overrides, seed)
    dqn = config.agent_config
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

        observation = on_device(tree.map_structure(torch.from_numpy, random_leaves(spec.observations, batch, rng)))
        next_observation = on_device(tree.map_structure(torch.from_numpy, random_leaves(spec.observations, batch, rng)))
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
