"""Target networks: make them, and move them towards the online network.

Both updates run under ``torch.no_grad`` with the fused ``torch._foreach_*``
kernels, one launch per group of tensors rather than one per parameter,
which matters for small networks updated every learner step and on GPU.
Parameters and buffers are paired by name; the two modules must have the
same structure (a ``make_target`` copy always does).
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def _paired(target: nn.Module, online: nn.Module, buffers: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Returns (target tensors, online tensors) matched by name, parameters or buffers."""
    if buffers:
        target_named, online_named = list(target.named_buffers()), list(online.named_buffers())
    else:
        target_named, online_named = list(target.named_parameters()), list(online.named_parameters())
    target_names = [name for name, _ in target_named]
    online_names = [name for name, _ in online_named]
    if target_names != online_names:
        kind = "buffers" if buffers else "parameters"
        raise ValueError(f"target and online {kind} differ: {target_names} vs {online_names}.")
    return [t for _, t in target_named], [t for _, t in online_named]


@torch.no_grad()
def hard_update_(target: nn.Module, online: nn.Module) -> None:
    """Copies every parameter and buffer of ``online`` into ``target`` in place."""
    for buffers in (False, True):
        target_tensors, online_tensors = _paired(target, online, buffers)
        if target_tensors:
            torch._foreach_copy_(target_tensors, online_tensors)


@torch.no_grad()
def polyak_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Moves ``target`` towards ``online``: theta' <- (1 - tau) theta' + tau theta.

    ``tau`` is the fraction of the online weights taken per call (e.g. 0.005
    for DDPG); tau = 1 is a hard copy and tau = 0 leaves the target as it is.
    Buffers (normalisation statistics, step counters) are not averaged but
    copied, since a blend of integer counters or running statistics has no
    meaning.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}.")
    target_params, online_params = _paired(target, online, buffers=False)
    if target_params:
        torch._foreach_lerp_(target_params, online_params, tau)
    target_buffers, online_buffers = _paired(target, online, buffers=True)
    if target_buffers:
        torch._foreach_copy_(target_buffers, online_buffers)


def make_target(network: M) -> M:
    """Returns a deep copy of ``network`` that autograd and optimisers ignore.

    Parameters get ``requires_grad=False`` and any copied ``.grad`` is
    dropped, so a target can never be stepped by accident.
    """
    target = copy.deepcopy(network)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
        parameter.grad = None
    return target
