"""Picks an encoder for an observation spec, so agents work on every common observation kind.

Each leaf of the observation spec is encoded by its kind (``encoder_for_leaf``):

* **categorical**: a scalar ``DiscreteArray`` (gymnasium ``Discrete``), or a
  rank-<=1 integer ``BoundedArray`` with minimum 0 (``MultiDiscrete``), with at
  most ``MAX_ONE_HOT_WIDTH`` categories in all -> ``OneHotEncoder``; wider ones,
  and 0/1-valued integer vectors (``MultiBinary``: the same information at half
  the width), are flattened;
* **image**: uint8 of rank 3 (one image) or 4 (a stack of images), in
  either channel order -> ``NatureCNN`` when both spatial sides are at least
  36 pixels, else ``CompactCNN``. The layout is read off the shape the way
  stable-baselines3's ``is_image_space_channels_first`` does: the smallest of
  the three image dimensions is the channel axis; when it is the middle one
  the layout is ambiguous and the spec is refused;
* **everything else** (vectors and arrays of any rank and dtype, scalars,
  float images, which stable-baselines3 does not treat as images either)
  -> ``FlattenEncoder`` (float32, unscaled).

A nested spec (dict, list or tuple of specs, e.g. a gymnasium ``Dict`` or a
dm_control task) gets a ``NestEncoder`` over its leaves; a single leaf gets
its encoder directly, so vector observations keep the numpy acting path
(``compile_numpy_forward``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tree
from dm_env import specs
from torch import nn

from distrl.networks.encoders import CompactCNN, FlattenEncoder, NatureCNN, NestEncoder, OneHotEncoder
from distrl.specs import SpecNest

#: Most one-hot features a categorical leaf may produce; wider integer vectors are flattened.
MAX_ONE_HOT_WIDTH = 4096


def _path_name(path: tuple) -> str:
    return "/".join(str(part) for part in path) or "observation"


def image_layout(shape: tuple[int, ...]) -> bool:
    """True when an image shape (``(C, H, W)``/``(H, W, C)``, optionally with a
    leading stack axis) is channels-last, False when channels-first.

    The channel axis is the smallest of the last three dimensions (ties go to
    channels-first, as in stable-baselines3); raises ValueError when the
    smallest is the middle one, where no layout is plausible.
    """
    image = shape[-3:]
    smallest = int(np.argmin(image))
    if smallest == 1 and image[1] < min(image[0], image[2]):
        raise ValueError(
            f"cannot tell the channel axis of image observations of shape {shape}: the smallest "
            "dimension is the middle one; give (C, H, W) or (H, W, C)"
        )
    return smallest == 2 and image[2] < image[0]


def encoder_for_leaf(spec: specs.Array) -> nn.Module:
    """The encoder of one observation leaf (see the module docstring)."""
    shape, dtype = tuple(spec.shape), np.dtype(spec.dtype)
    num_values = getattr(spec, "num_values", None)
    if num_values is not None and shape == () and int(num_values) <= MAX_ONE_HOT_WIDTH:
        return OneHotEncoder(int(num_values))
    if np.issubdtype(dtype, np.integer) and len(shape) <= 1 and isinstance(spec, specs.BoundedArray):
        minimum = np.broadcast_to(spec.minimum, shape)
        maximum = np.broadcast_to(spec.maximum, shape)
        categories = (maximum.astype(np.int64) + 1).reshape(-1)
        if (minimum == 0).all() and (categories >= 2).all() and not (categories == 2).all():
            if categories.sum() <= MAX_ONE_HOT_WIDTH:
                return OneHotEncoder(int(categories[0]) if shape == () else tuple(int(n) for n in categories))
    if dtype == np.uint8 and len(shape) in (3, 4):
        channels_last = image_layout(shape)
        spatial = shape[-3:-1] if channels_last else shape[-2:]
        if min(spatial) >= 36:
            return NatureCNN(shape, channels_last=channels_last)
        return CompactCNN(shape, channels_last=channels_last)
    return FlattenEncoder(shape)


def make_encoder(observation_spec: SpecNest) -> nn.Module:
    """The encoder for an observation spec: ``encoder_for_leaf`` for a single leaf,
    a ``NestEncoder`` over every leaf of a nested spec.

    Raises ValueError naming the leaf for a spec no encoder fits (an
    ambiguous image layout, an empty nest) or that is not a ``dm_env`` spec.
    """
    if isinstance(observation_spec, specs.Array):
        return encoder_for_leaf(observation_spec)
    leaves = tree.flatten_with_path(observation_spec)
    if not leaves:
        raise ValueError(f"observation spec {observation_spec!r} has no leaves to encode")
    encoders = []
    for path, leaf in leaves:
        name = _path_name(path)
        if not isinstance(leaf, specs.Array):
            raise ValueError(f"observation spec leaf {name!r} is {leaf!r}, not a dm_env.specs.Array")
        try:
            encoders.append((name, encoder_for_leaf(leaf)))
        except ValueError as error:
            raise ValueError(f"observation leaf {name!r}: {error}") from error
    return NestEncoder(encoders)


def describe_encoder(encoder: nn.Module) -> Any:
    """What an encoder does, for run records: a string, or ``{leaf path: string}`` for a nest."""
    describe = getattr(encoder, "describe", None)
    return describe() if describe is not None else type(encoder).__name__


def flat_size(spec: specs.Array) -> int:
    """Number of scalars in one value of ``spec``."""
    return int(np.prod(spec.shape)) if len(spec.shape) else 1
