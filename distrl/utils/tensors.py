"""Moving numpy batches onto a torch device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import tree


def to_tensor(value: Any, device: torch.device) -> torch.Tensor:
    """A numpy array (or tensor) as a tensor on ``device``.

    CPU arrays are wrapped without a copy; on CUDA the copy is non-blocking
    from pinned memory when the caller pinned it.
    """
    tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
    if tensor.device != device:
        tensor = tensor.to(device, non_blocking=True)
    return tensor


def to_tensors(nest: Any, device: torch.device) -> Any:
    """``to_tensor`` over every leaf of a nest."""
    return tree.map_structure(lambda leaf: to_tensor(leaf, device), nest)


def to_cpu(value: Any) -> Any:
    """A copy of a nest of tensors (dicts, lists, tuples) with every tensor
    detached and on the CPU, other leaves kept: a learner state for a checkpoint."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((k, to_cpu(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(to_cpu(v) for v in value)
    return value


def pin(nest: Any) -> Any:
    """Tensors of ``nest`` in page-locked host memory, for asynchronous copies to CUDA."""
    return tree.map_structure(lambda leaf: torch.from_numpy(np.asarray(leaf)).pin_memory(), nest)
