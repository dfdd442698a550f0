"""Weight initialisers applied to every ``nn.Linear`` and ``nn.Conv2d`` in a module.

Each function works in place on all such layers found by ``module.modules()``
(the module itself included), returns the module so it can wrap a
constructor call, and raises if there is no layer to initialise, since a
silent no-op almost always means the wrong module was passed. Biases are
set to zero unless the function's docstring says otherwise. Other
parameters (LayerNorm affine terms, a Gaussian head's log-std vector) are
left alone.
"""

from __future__ import annotations

import math
from typing import TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)

_LAYER_TYPES = (nn.Linear, nn.Conv2d)


def _layers(module: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    layers = [m for m in module.modules() if isinstance(m, _LAYER_TYPES)]
    if not layers:
        raise ValueError(f"{type(module).__name__} contains no nn.Linear or nn.Conv2d to initialise.")
    return layers


def _zero_bias(layer: nn.Linear | nn.Conv2d) -> None:
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def kaiming_init_(module: M) -> M:
    """He-normal weights (fan-in, ReLU gain sqrt(2)) for ReLU networks; zero biases."""
    for layer in _layers(module):
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        _zero_bias(layer)
    return module


def xavier_init_(module: M) -> M:
    """Glorot-uniform weights, U(+-sqrt(6 / (fan_in + fan_out))); zero biases."""
    for layer in _layers(module):
        nn.init.xavier_uniform_(layer.weight)
        _zero_bias(layer)
    return module


def fan_in_uniform_init_(module: M) -> M:
    """DDPG hidden-layer init (Lillicrap et al., 2016): weights *and* biases
    drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in is the number
    of inputs to one output unit (in_features, or in_channels * kh * kw)."""
    for layer in _layers(module):
        bound = 1.0 / math.sqrt(layer.weight[0].numel())
        nn.init.uniform_(layer.weight, -bound, bound)
        if layer.bias is not None:
            nn.init.uniform_(layer.bias, -bound, bound)
    return module


def uniform_final_init_(module: M, scale: float = 3e-3) -> M:
    """DDPG output-layer init: weights *and* biases from U(-scale, scale).

    Keeps initial outputs near zero, so a tanh actor starts unsaturated and a
    critic starts with near-zero values. Following the DDPG paper the biases
    are drawn from the same range rather than zeroed.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}.")
    for layer in _layers(module):
        nn.init.uniform_(layer.weight, -scale, scale)
        if layer.bias is not None:
            nn.init.uniform_(layer.bias, -scale, scale)
    return module


def orthogonal_init_(module: M, gain: float) -> M:
    """Orthogonal weights scaled by ``gain``; zero biases.

    The usual on-policy choices are gain sqrt(2) for ReLU hidden layers,
    0.01 for a policy's output layer and 1 for a value output layer.
    """
    for layer in _layers(module):
        nn.init.orthogonal_(layer.weight, gain=gain)
        _zero_bias(layer)
    return module
