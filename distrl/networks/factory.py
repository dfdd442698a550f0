"""Picks an encoder for an observation spec, so agents work on vectors and images alike."""

from __future__ import annotations

import numpy as np
from torch import nn

from distrl.networks.encoders import FlattenEncoder, NatureCNN


def make_encoder(observation_spec) -> nn.Module:
    """Returns a ``NatureCNN`` for (C, H, W) image observations, else a ``FlattenEncoder``.

    An observation is treated as an image when it has three dimensions and
    the last two are at least 32 pixels (the Nature CNN's receptive field
    needs that much); everything else (vectors, one-hot grids) is flattened.
    """
    shape = tuple(observation_spec.shape)
    if len(shape) == 3 and min(shape[1:]) >= 32:
        return NatureCNN(input_shape=shape)
    if len(shape) == 0:
        return FlattenEncoder((1,))
    return FlattenEncoder(shape)


def flat_size(spec) -> int:
    """Number of scalars in one value of ``spec``."""
    return int(np.prod(spec.shape)) if len(spec.shape) else 1
