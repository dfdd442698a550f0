"""Package attributes imported on first use (PEP 562 module ``__getattr__``)."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<modules[name]>``
    the first time attribute ``name`` is asked for and returns that module's ``name``.

    A package uses it to export names whose modules import heavy or optional
    dependencies (torch, ray) without importing them when a light submodule
    is imported. Raises AttributeError for any other name, as a module does.
    """

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
