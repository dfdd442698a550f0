"""A numpy forward pass for small MLP networks, used when acting on one (or a few) observations.

Measured on CartPole-sized networks (4 -> 128 -> 128 -> 2, one thread), a
torch ``nn.Module`` call for a single observation costs about 100 us, almost
all Python dispatch through the module tree, while the same maths in numpy
costs about 20 us. Acting is one forward pass per environment step, so in the
single-process mode this is the difference between the policy and the
environment dominating a step.

The compiled function reads the torch parameters through numpy views that
share their memory, so weights loaded in place (``load_numpy_params_``) are
seen at once and nothing is copied. Only the layer types below are supported;
``compile_numpy_forward`` returns None for anything else and callers keep the
torch path.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from distrl.networks.composition import Network
from distrl.networks.encoders import FlattenEncoder, IdentityEncoder, OneHotEncoder
from distrl.networks.heads import (
    CategoricalHead,
    DeterministicHead,
    DiagGaussianHead,
    DiscreteQHead,
    MultiCategoricalHead,
)
from distrl.networks.torsos import MLP

NumpyForward = Callable[[np.ndarray], np.ndarray]

_ACTIVATIONS: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Tanh: lambda x: np.tanh(x, out=x),
}


def _view(tensor: torch.Tensor) -> np.ndarray:
    """A numpy array sharing memory with a CPU tensor."""
    return tensor.detach().numpy()


def _affine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x W^T + b for x of shape [*B, in]; ``weight @ x`` for one vector is the fastest form."""
    return (weight @ x if x.ndim == 1 else x @ weight.T) + bias


def _compile_torso(torso: nn.Module) -> list[tuple[np.ndarray, np.ndarray, Callable | None]] | None:
    if not isinstance(torso, MLP):
        return None
    layers: list[tuple[np.ndarray, np.ndarray, Callable | None]] = []
    for module in torso.layers:
        if isinstance(module, nn.Linear):
            layers.append((_view(module.weight), _view(module.bias), None))
        elif type(module) in _ACTIVATIONS and layers and layers[-1][2] is None:
            weight, bias, _ = layers[-1]
            layers[-1] = (weight, bias, _ACTIVATIONS[type(module)])
        else:
            return None
    return layers


def _compile_encoder(encoder: nn.Module) -> NumpyForward | None:
    """The numpy form of a parameter-free encoder: observation [*lead, ...] -> float32 [*lead, features]."""
    if isinstance(encoder, (FlattenEncoder, IdentityEncoder)):
        if isinstance(encoder, FlattenEncoder):
            observation_ndim, input_dim = len(encoder.input_shape), encoder.output_dim
        else:
            observation_ndim, input_dim = 1, encoder.input_dim

        def flatten(observation: np.ndarray) -> np.ndarray:
            x = np.asarray(observation, dtype=np.float32)
            return x.reshape(x.shape[: x.ndim - observation_ndim] + (input_dim,))

        return flatten
    if isinstance(encoder, OneHotEncoder):
        offsets, width, scalar = encoder.offsets.numpy(), encoder.output_dim, encoder.scalar

        def one_hot(observation: np.ndarray) -> np.ndarray:
            indices = np.asarray(observation, dtype=np.int64)
            if scalar:
                indices = indices[..., None]
            indices = indices + offsets
            codes = np.zeros(indices.shape[:-1] + (width,), dtype=np.float32)
            np.put_along_axis(codes, indices, 1.0, axis=-1)
            return codes

        return one_hot
    return None


def compile_numpy_forward(network: nn.Module) -> NumpyForward | None:
    """Returns ``f(observation) -> output``, or None when the network is not supported.

    Supported: ``Network(FlattenEncoder | IdentityEncoder | OneHotEncoder, MLP (Linear with
    ReLU/Tanh, no LayerNorm), head)`` on CPU, where the output is the head's:
    Q-values for ``DiscreteQHead``, the action for ``DeterministicHead``, the
    logits for ``CategoricalHead`` (all components' logits, concatenated, for
    ``MultiCategoricalHead``) and the mean for ``DiagGaussianHead`` (the
    distributions' parameters that fix their mode). ``observation`` may carry
    leading batch axes (none for one observation); the output keeps them and
    equals the torch forward's up to float32 rounding.
    """
    if not isinstance(network, Network) or any(p.device.type != "cpu" for p in network.parameters()):
        return None
    encode = _compile_encoder(network.encoder)
    if encode is None:
        return None
    torso = _compile_torso(network.torso)
    if torso is None:
        return None
    head = network.head
    if isinstance(head, DiscreteQHead):
        advantage_w, advantage_b = _view(head.advantage.weight), _view(head.advantage.bias)
        if head.dueling:
            value_w, value_b = _view(head.value.weight), _view(head.value.bias)

            def head_fn(x: np.ndarray) -> np.ndarray:
                advantage = _affine(x, advantage_w, advantage_b)
                return _affine(x, value_w, value_b) + advantage - advantage.mean(axis=-1, keepdims=True)
        else:

            def head_fn(x: np.ndarray) -> np.ndarray:
                return _affine(x, advantage_w, advantage_b)
    elif isinstance(head, DeterministicHead):
        linear_w, linear_b = _view(head.linear.weight), _view(head.linear.bias)
        low, high = _view(head.action_minimum), _view(head.action_maximum)

        def head_fn(x: np.ndarray) -> np.ndarray:
            unit = (np.tanh(_affine(x, linear_w, linear_b)) + 1.0) * 0.5
            return np.clip(low + unit * (high - low), low, high)
    elif isinstance(head, (CategoricalHead, MultiCategoricalHead, DiagGaussianHead)):
        linear = head.mean if isinstance(head, DiagGaussianHead) else head.logits
        linear_w, linear_b = _view(linear.weight), _view(linear.bias)

        def head_fn(x: np.ndarray) -> np.ndarray:
            return _affine(x, linear_w, linear_b)
    else:
        return None

    def forward(observation: np.ndarray) -> np.ndarray:
        x = encode(observation)
        if x.ndim == 1:
            for weight, bias, activation in torso:
                x = weight @ x + bias
                if activation is not None:
                    x = activation(x)
        else:
            for weight, bias, activation in torso:
                x = x @ weight.T + bias
                if activation is not None:
                    x = activation(x)
        return head_fn(x)

    return forward
