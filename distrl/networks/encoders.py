"""Encoders: the first stage of encoder -> torso -> head.

An encoder turns a raw (batched) observation into a flat float32 feature
vector of size ``output_dim``. Observations may carry any number of leading
batch dimensions; only the trailing observation dimensions are consumed.
Every encoder has ``describe()``, a short text for run records
(``config.json``) and the start-of-run line.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import tree
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

    def describe(self) -> str:
        return f"identity({self.input_dim})"


class FlattenEncoder(nn.Module):
    """Flattens the trailing ``len(input_shape)`` dimensions and casts to float32.

    Leading dimensions (batch, time) are preserved, so an observation of shape
    ``[*lead, *input_shape]`` becomes ``[*lead, prod(input_shape)]``; a scalar
    observation (``input_shape == ()``) becomes one feature, ``[*lead, 1]``.
    The cast lets float64 numpy observations and integer grids feed ``nn.Linear``.
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

    def describe(self) -> str:
        return f"flatten({'x'.join(map(str, self.input_shape)) or 'scalar'} -> {self.output_dim})"


class OneHotEncoder(nn.Module):
    """One-hot codes of integer (categorical) observations, concatenated.

    ``num_values`` is the number of categories of each component: an int
    for a scalar observation (a gymnasium ``Discrete``, a ``DiscreteArray``
    spec: input ``[*lead]``), a tuple for a vector of k components (a
    ``MultiDiscrete``: input ``[*lead, k]``). Output: float32
    ``[*lead, sum(num_values)]``.

    Why one-hot and not a learned embedding: a one-hot code is the tabular
    representation of a small discrete state (FrozenLake, CliffWalking,
    Taxi), lets the first linear layer learn one independent row per state,
    adds no parameters of its own and is what stable-baselines3's
    ``preprocess_obs`` does for Discrete and MultiDiscrete spaces; an
    embedding only pays for very many categories, which
    ``distrl.networks.factory`` sends to ``FlattenEncoder`` instead.
    Values must lie in [0, num_values) per component: the registry's
    ``ValidatingWrapper`` checks integer observations against their spec's
    bounds at the environment boundary, since an out-of-range value here
    would land in the next component's slot.
    """

    def __init__(self, num_values: int | tuple[int, ...]) -> None:
        super().__init__()
        self.scalar = isinstance(num_values, (int, np.integer))
        self.num_values = (int(num_values),) if self.scalar else tuple(int(n) for n in num_values)
        if not self.num_values or any(n < 1 for n in self.num_values):
            raise ValueError(f"num_values must be positive, got {num_values!r}")
        self.output_dim = sum(self.num_values)
        offsets = np.concatenate([[0], np.cumsum(self.num_values)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64), persistent=False)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """int [*lead] (scalar) or [*lead, k] -> float32 [*lead, sum(num_values)]."""
        indices = observation.long()
        if self.scalar:
            indices = indices.unsqueeze(-1)
        indices = indices + self.offsets
        codes = torch.zeros(*indices.shape[:-1], self.output_dim, dtype=torch.float32, device=indices.device)
        return codes.scatter_(-1, indices, 1.0)

    def describe(self) -> str:
        if self.scalar:
            return f"one_hot({self.num_values[0]})"
        return f"one_hot({'+'.join(map(str, self.num_values))} -> {self.output_dim})"


def _scale_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1]; any other dtype to float32 unscaled."""
    if pixels.dtype == torch.uint8:
        return pixels.to(torch.float32).mul_(1.0 / 255.0)
    return pixels.to(torch.float32)


class ImageEncoder(nn.Module):
    """The shared shell of the image encoders: layout, scaling, leading dims.

    ``image_shape`` is the observation's own shape: ``(C, H, W)`` when
    ``channels_last`` is False, ``(H, W, C)`` when True, or with a leading
    stack axis, ``(N, C, H, W)`` / ``(N, H, W, C)``, whose N and C merge
    into N * C input channels. Channel-last frames are permuted to torch's
    channel-first layout inside ``forward``, on the observation's device,
    so replay keeps the frames as the environment gave them (uint8, either
    layout) and nothing is transposed per step in numpy. uint8 pixels are
    scaled by 1/255 on that device; other dtypes are taken as they are
    (float images are assumed to be normalised already).
    """

    def __init__(self, image_shape: Sequence[int], channels_last: bool) -> None:
        super().__init__()
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) not in (3, 4) or any(d <= 0 for d in self.image_shape):
            raise ValueError(f"image_shape must be (C, H, W), (H, W, C) or with a stack axis, got {image_shape}")
        self.channels_last = bool(channels_last)
        *stack, a, b, c = self.image_shape
        height, width, channels = (a, b, c) if channels_last else (b, c, a)
        self.input_shape = (channels * (stack[0] if stack else 1), height, width)

    def _pixels(self, observation: torch.Tensor) -> tuple[torch.Size, torch.Tensor]:
        rank = len(self.image_shape)
        lead = observation.shape[: observation.dim() - rank]
        pixels = observation.reshape(-1, *self.image_shape)
        if self.channels_last:
            pixels = pixels.movedim(-1, -3)  # [..., H, W, C] -> [..., C, H, W]
        return lead, _scale_pixels(pixels.reshape(-1, *self.input_shape))

    def _layout(self) -> str:
        return "channels-last, permuted on device" if self.channels_last else "channels-first"


class NatureCNN(ImageEncoder):
    """The convolutional stack of the Nature DQN paper (Mnih et al., 2015).

    Conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1, each
    followed by ReLU, then Linear to ``output_dim`` (512) and ReLU. Needs
    images of at least 36x36 pixels; the default ``(4, 84, 84)`` is four
    stacked 84x84 grey frames. See ``ImageEncoder`` for layouts and scaling.
    """

    def __init__(
        self, input_shape: Sequence[int] = (4, 84, 84), output_dim: int = 512, channels_last: bool = False
    ) -> None:
        super().__init__(input_shape, channels_last)
        channels, height, width = self.input_shape
        if min(height, width) < 36:
            raise ValueError(f"NatureCNN needs images of at least 36x36 pixels, got {height}x{width}")
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
        """[..., *image_shape] frames -> float32 [..., output_dim]."""
        lead, pixels = self._pixels(observation)
        return self.linear(self.convs(pixels)).reshape(*lead, self.output_dim)

    def describe(self) -> str:
        return f"nature_cnn({'x'.join(map(str, self.image_shape))}, {self._layout()} -> {self.output_dim})"


class CompactCNN(ImageEncoder):
    """A small CNN for images below the Nature CNN's 36x36 minimum (grid worlds, MiniGrid-like views).

    Conv 16 3x3 and conv 32 3x3, stride 1 and padding 1 (so any size works),
    ReLU after each, then Linear to ``output_dim`` (256) and ReLU: the size
    of the MiniGrid baselines' encoders (16-32-64 filters on 7x7 views). See
    ``ImageEncoder`` for layouts and scaling.
    """

    def __init__(self, image_shape: Sequence[int], output_dim: int = 256, channels_last: bool = False) -> None:
        super().__init__(image_shape, channels_last)
        channels, height, width = self.input_shape
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(32 * height * width, output_dim), nn.ReLU())
        self.output_dim = output_dim

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """[..., *image_shape] frames -> float32 [..., output_dim]."""
        lead, pixels = self._pixels(observation)
        return self.linear(self.convs(pixels)).reshape(*lead, self.output_dim)

    def describe(self) -> str:
        return f"compact_cnn({'x'.join(map(str, self.image_shape))}, {self._layout()} -> {self.output_dim})"


class NestEncoder(nn.Module):
    """Encodes each leaf of a nested observation with its own encoder and concatenates the features.

    Acme's networks do the same for nested observations (``batch_concat``
    over the nest). ``encoders`` maps each leaf's path (as ``tree``
    flattens the observation spec, e.g. ``position``, ``image``,
    ``0/1``) to its encoder, in ``tree.flatten`` order; an observation with
    leaves ``[*lead, *leaf_shape]`` becomes float32 ``[*lead, sum of
    output_dims]``. Raises ValueError for an observation whose structure
    does not match (a wrong number of leaves).
    """

    def __init__(self, encoders: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.paths = [path for path, _ in encoders]
        self.leaf_encoders = nn.ModuleList([encoder for _, encoder in encoders])
        self.output_dim = sum(encoder.output_dim for encoder in self.leaf_encoders)

    def forward(self, observation: Any) -> torch.Tensor:
        """A nest of tensors (the observation spec's structure) -> float32 [*lead, output_dim]."""
        leaves = tree.flatten(observation)
        if len(leaves) != len(self.leaf_encoders):
            raise ValueError(f"NestEncoder expects {len(self.leaf_encoders)} observation leaves, got {len(leaves)}")
        return torch.cat([encoder(leaf) for encoder, leaf in zip(self.leaf_encoders, leaves)], dim=-1)

    def describe(self) -> dict[str, str]:
        return {path: encoder.describe() for path, encoder in zip(self.paths, self.leaf_encoders)}
