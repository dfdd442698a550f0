"""Parameters as plain numpy for shipping, and as one flat vector.

``to_numpy_params`` / ``load_numpy_params_`` are the wire format between
learner and actors: a dict of CPU numpy arrays pickles cheaply, goes into
the Ray object store once per version (numpy arrays are stored zero-copy
there), and carries no device or autograd state. ``flat_vector`` /
``set_flat_vector_`` view all parameters as one 1-D tensor, for
evolution-style search, parameter noise and checksums.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import torch
from torch import nn


def to_numpy_params(module: nn.Module) -> dict[str, np.ndarray]:
    """Returns the module's state dict (parameters and persistent buffers) as
    contiguous CPU numpy arrays.

    The arrays are copies that share no memory with the module, so later
    optimiser steps do not change what was already published.
    """
    return {
        name: tensor.detach().to("cpu", memory_format=torch.contiguous_format, copy=True).numpy()
        for name, tensor in module.state_dict().items()
    }


@torch.no_grad()
def load_numpy_params_(module: nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copies ``params`` into the module's existing tensors, in place.

    No tensor is reallocated, so optimisers and anything else holding a
    reference to a parameter stay valid, and a CUDA module receives one
    host-to-device copy per tensor. Keys and shapes must match the state dict
    exactly. Read-only arrays (what ``ray.get`` returns) are accepted: they
    are only read.
    """
    state = module.state_dict()
    missing = state.keys() - params.keys()
    unexpected = params.keys() - state.keys()
    if missing or unexpected:
        raise KeyError(f"params do not match the module: missing {sorted(missing)}, unexpected {sorted(unexpected)}.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for name, tensor in state.items():
            value = params[name]
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: shape {tuple(value.shape)} does not match {tuple(tensor.shape)}.")
            tensor.copy_(torch.from_numpy(value))


def flat_vector(module: nn.Module) -> torch.Tensor:
    """Returns all parameters (not buffers) concatenated in ``parameters()``
    order into a new detached 1-D tensor."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


@torch.no_grad()
def set_flat_vector_(module: nn.Module, vector: torch.Tensor) -> None:
    """Writes a vector laid out as by ``flat_vector`` back into the parameters.

    Unlike ``torch.nn.utils.vector_to_parameters`` it copies into the
    existing tensors instead of rebinding them to views of ``vector``, so
    parameters keep their storage and never alias the caller's vector.
    """
    params = list(module.parameters())
    expected = sum(p.numel() for p in params)
    if vector.dim() != 1 or vector.numel() != expected:
        raise ValueError(f"expected a 1-D vector of {expected} elements, got shape {tuple(vector.shape)}.")
    offset = 0
    for p in params:
        p.copy_(vector[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
