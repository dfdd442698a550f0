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


def pin(nest: Any) -> Any:
    """Tensors of ``nest`` in page-locked host memory, for asynchronous copies to CUDA."""
    return tree.map_structure(lambda leaf: torch.from_numpy(np.asarray(leaf)).pin_memory(), nest)


def select_device(requested: str) -> torch.device:
    """Resolves ``auto`` | ``cuda`` | ``cpu`` (``auto`` picks CUDA when available)."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("learner_device='cuda' was requested but torch.cuda.is_available() is False")
    if requested not in ("cuda", "cpu"):
        raise ValueError(f"learner_device must be one of auto, cuda, cpu; got {requested!r}")
    return torch.device(requested)
