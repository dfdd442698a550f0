"""Atomic checkpoint files loaded with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically: a temp file in the same folder, fsync, rename.

    A crash mid-write leaves the previous checkpoint intact. ``state`` may hold
    tensors, numpy arrays and plain Python containers and scalars.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint`` without executing pickled code."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
