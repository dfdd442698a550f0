"""State files: nests of arrays, tensors and plain values saved and loaded without pickle.

Checkpoints hold more than torch modules: replay columns (numpy), RNG
states (dicts of Python ints), counters, NamedTuple item structures. A
plain ``torch.save`` of numpy arrays cannot be read back with
``torch.load(weights_only=True)``, and unpickling anything else executes
code from the file. ``save_state`` therefore encodes the nest into what the
weights-only loader accepts: numpy arrays become tensors sharing their
memory (nothing is copied, so a multi-gigabyte replay column is written
straight from its array), numpy scalars and tuples are tagged, and
NamedTuples are recorded by class path, restored only for classes of
distrl itself. ``load_state`` reverses it, with ``mmap=True`` so that a
large file is paged in as it is read, not loaded whole first.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distrl.utils.checkpointing import save_checkpoint

_ARRAY, _SCALAR, _TUPLE, _NAMEDTUPLE = "__ndarray__", "__npscalar__", "__tuple__", "__namedtuple__"

#: Modules whose NamedTuple classes ``load_state`` may rebuild (no other class is ever imported).
ALLOWED_MODULE_PREFIX = "distrl."


class StateFileError(ValueError):
    """A state file cannot be encoded or decoded (an unsupported value, a class outside distrl)."""


def encode(value: Any) -> Any:
    """``value`` as the weights-only loader's types (see the module docstring)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise StateFileError(f"cannot save an object array (shape {value.shape})")
        array = value if value.flags.c_contiguous else np.ascontiguousarray(value)
        if array.dtype == np.bool_ or array.dtype.kind in "iuf":
            with warnings.catch_warnings():
                # A read-only array (e.g. replay storage shared for saving) is only read here.
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                return {_ARRAY: torch.from_numpy(array), "dtype": array.dtype.str}
        raise StateFileError(f"cannot save an array of dtype {array.dtype}")
    if isinstance(value, np.generic):
        return {_SCALAR: value.item(), "dtype": value.dtype.str}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        cls = type(value)
        return {_NAMEDTUPLE: f"{cls.__module__}.{cls.__qualname__}", "fields": [encode(v) for v in value]}
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {key: encode(v) for key, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise StateFileError(f"cannot save a {type(value).__qualname__} in a state file")


def _named_tuple_class(path: str) -> type:
    module_name, _, name = path.rpartition(".")
    if not path.startswith(ALLOWED_MODULE_PREFIX):
        raise StateFileError(f"state file names class {path!r}; only distrl's own NamedTuples are restored")
    cls = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise StateFileError(f"state file names {path!r}, which is not a NamedTuple class")
    return cls


def decode(value: Any) -> Any:
    """The inverse of ``encode``: arrays come back as numpy arrays (sharing the tensors' memory)."""
    if isinstance(value, dict):
        if _ARRAY in value:
            return value[_ARRAY].numpy().view(np.dtype(value["dtype"]))
        if _SCALAR in value:
            return np.dtype(value["dtype"]).type(value[_SCALAR])
        if _TUPLE in value:
            return tuple(decode(v) for v in value[_TUPLE])
        if _NAMEDTUPLE in value:
            return _named_tuple_class(value[_NAMEDTUPLE])(*[decode(v) for v in value["fields"]])
        return {key: decode(v) for key, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def save_state(path: str | os.PathLike, state: Any) -> None:
    """Writes ``state`` (a nest of arrays, tensors and plain values) atomically (``save_checkpoint``)."""
    save_checkpoint(path, {"state": encode(state)})


def load_state(path: str | os.PathLike) -> Any:
    """Reads a ``save_state`` file with ``torch.load(weights_only=True, mmap=True)``.

    Raises ``StateFileError`` naming the file when it is not a state file
    (torch's own errors, for a damaged file, name it too).
    """
    path = Path(path)
    content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(content, dict) or "state" not in content:
        raise StateFileError(f"{path} is not a state file (no 'state' entry)")
    return decode(content["state"])
