"""Versioned weight distribution: sources publish, clients pull only newer versions."""

from distrl.variables.client import VariableClient

__all__ = ["VariableClient"]
