"""Torsos: the middle stage of encoder -> torso -> head.

A torso maps the encoder's features to a representation the head reads.
Agents that need an extra input part-way through (the DDPG critic's action)
build that themselves; torsos here take one feature vector.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """A stack of Linear layers, each optionally layer-normed, then activated.

    Per hidden size: ``Linear -> [LayerNorm] -> activation``. With
    ``activate_final=False`` the last layer is a bare ``Linear`` (neither
    normalised nor activated), which is what you want when the MLP itself
    produces outputs. An empty ``hidden_sizes`` is the identity and
    ``output_dim == input_dim``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_sizes: Sequence[int],
        activation: Callable[[], nn.Module] = nn.ReLU,
        layer_norm: bool = False,
        activate_final: bool = True,
    ) -> None:
        super().__init__()
        if input_dim <= 0 or any(h <= 0 for h in hidden_sizes):
            raise ValueError(
                f"input_dim and hidden_sizes must be positive, got {input_dim}, {list(hidden_sizes)}."
            )
        self.input_dim = input_dim
        layers: list[nn.Module] = []
        in_dim = input_dim
        for i, size in enumerate(hidden_sizes):
            layers.append(nn.Linear(in_dim, size))
            if activate_final or i < len(hidden_sizes) - 1:
                if layer_norm:
                    layers.append(nn.LayerNorm(size))
                layers.append(activation())
            in_dim = size
        self.layers = nn.Sequential(*layers)
        self.output_dim = in_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float32 [..., input_dim] -> float32 [..., output_dim]."""
        return self.layers(features)
