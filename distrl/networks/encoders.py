"""Encoders: the first stage of encoder -> torso -> head.

An encoder turns a raw (batched) observation into a flat float32 feature
vector of size ``output_dim``. Observations may carry any number of leading
batch dimensions; only the trailing observation dimensions are consumed.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class IdentityEncoder(nn.Module):
    """Passes an already-flat observation through unchanged.

    Use it when observations are float vectors of size ``input_dim`` and no
    preprocessing is wanted; the dtype is left alone on purpose.
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        if input_dim <= 0:
            raise ValueError(f"input_dim must be positive, got {input_dim}.")
        self.input_dim = input_dim
        self.output_dim = input_dim

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """Returns ``observation`` unchanged."""
        return observation


class FlattenEncoder(nn.Module):
    """Flattens the trailing ``len(input_shape)`` dimensions and casts to float32.

    Leading dimensions (batch, time) are preserved, so an observation of shape
    ``[*lead, *input_shape]`` becomes ``[*lead, prod(input_shape)]``. The cast
    lets float64 numpy observations and integer grids feed ``nn.Linear``.
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        if any(d <= 0 for d in self.input_shape):
            raise ValueError(f"input_shape must be positive, got {self.input_shape}.")
        self.output_dim = math.prod(self.input_shape)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """[..., *input_shape] (any dtype) -> float32 [..., prod(input_shape)]."""
        lead = observation.shape[: observation.dim() - len(self.input_shape)]
        return observation.reshape(*lead, self.output_dim).to(torch.float32)


class NatureCNN(nn.Module):
    """The convolutional stack of the Nature DQN paper (Mnih et al., 2015).

    Conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1, each
    followed by ReLU, then Linear to ``output_dim`` (512) and ReLU.

    ``input_shape`` is channels-first ``(C, H, W)``, PyTorch's native layout;
    the default ``(4, 84, 84)`` is four stacked 84x84 grey frames. Wrappers
    that produce ``(H, W, C)`` frames must transpose before the network.
    uint8 pixels are scaled by 1/255 into [0, 1]; any other dtype is cast to
    float32 unscaled, on the assumption it is already normalised.
    """

    def __init__(self, input_shape: Sequence[int] = (4, 84, 84), output_dim: int = 512) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}.")
        self.input_shape = tuple(int(d) for d in input_shape)
        channels = self.input_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            conv_dim = self.convs(torch.zeros(1, *self.input_shape)).shape[-1]
        self.linear = nn.Sequential(nn.Linear(conv_dim, output_dim), nn.ReLU())
        self.output_dim = output_dim

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """[..., C, H, W] frames (uint8 scaled by 1/255, other dtypes taken as they are) -> float32 [..., output_dim]."""
        lead = observation.shape[:-3]
        pixels = observation.reshape(-1, *self.input_shape)
        if pixels.dtype == torch.uint8:
            pixels = pixels.to(torch.float32).mul_(1.0 / 255.0)
        else:
            pixels = pixels.to(torch.float32)
        features = self.linear(self.convs(pixels))
        return features.reshape(*lead, self.output_dim)
