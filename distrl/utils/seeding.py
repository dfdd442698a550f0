"""Deterministic seed derivation so every component gets its own independent stream."""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(seed: int, *path: int | str) -> int:
    """Returns a 32-bit seed derived from ``seed`` and a path such as ("actor", 3).

    Uses ``np.random.SeedSequence`` so sibling components (actors, samplers,
    evaluators) get statistically independent streams from one experiment seed.
    """
    entropy = [int(seed)] + [_to_int(p) for p in path]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _to_int(part: int | str) -> int:
    if isinstance(part, int):
        return part
    return int.from_bytes(part.encode("utf-8"), "little") % (2**63)


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's legacy and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
