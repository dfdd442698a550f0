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
    """``to_tensor`` over every leaf of a nest (an array is a nest of one leaf)."""
    if isinstance(nest, (np.ndarray, torch.Tensor)):
        return to_tensor(nest, device)
    return tree.map_structure(lambda leaf: to_tensor(leaf, device), nest)


def batch_of_one(observation: Any) -> Any:
    """One observation (an array or a nest of arrays) as CPU tensors with a leading batch axis of 1."""
    if isinstance(observation, np.ndarray):
        return torch.from_numpy(observation).unsqueeze(0)
    return tree.map_structure(lambda leaf: torch.as_tensor(np.asarray(leaf)).unsqueeze(0), observation)


def as_tensors(nest: Any) -> Any:
    """An array, or a nest of arrays, as CPU tensors (sharing memory where numpy allows)."""
    if isinstance(nest, np.ndarray):
        return torch.from_numpy(nest)
    return tree.map_structure(lambda leaf: torch.as_tensor(np.asarray(leaf)), nest)


def concat_nests(nests: Any, dim: int = 0) -> Any:
    """``torch.cat`` of same-structured nests of tensors, leaf by leaf, along ``dim``."""
    if isinstance(nests[0], torch.Tensor):
        return torch.cat(list(nests), dim=dim)
    return tree.map_structure(lambda *leaves: torch.cat(leaves, dim=dim), *nests)


def leading_size(nest: Any) -> int:
    """Size of the leading axis of the first leaf of a nest of tensors or arrays."""
    leaf = nest if hasattr(nest, "shape") else tree.flatten(nest)[0]
    return int(leaf.shape[0])


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
