"""Versioned weight distribution: sources publish, clients pull only newer versions.

``VariableClient`` is imported on first use, so processes that only need
``distrl.variables.weight_store`` (the Ray weight store actor) do not import
torch.
"""

from typing import Any

__all__ = ["VariableClient"]


def __getattr__(name: str) -> Any:
    if name == "VariableClient":
        from distrl.variables.client import VariableClient

        return VariableClient
    raise AttributeError(f"module 'distrl.variables' has no attribute {name!r}")
