"""``Network``: the encoder -> torso -> head composition every agent builds on."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Network(nn.Module):
    """Computes ``head(torso(encoder(observation)))``.

    Keeping the three stages as named submodules lets agents share or swap
    one stage (a CNN encoder for pixels, a different head per algorithm)
    and lets init functions target a single stage, e.g.
    ``uniform_final_init_(network.head)``. Where the stages declare their
    sizes (``output_dim`` on the earlier stage, ``input_dim`` on the later)
    they are checked at construction, so a mismatch fails here rather than
    as a shape error in the first forward pass.
    """

    def __init__(self, encoder: nn.Module, torso: nn.Module, head: nn.Module) -> None:
        super().__init__()
        for (first_name, first), (second_name, second) in (
            (("encoder", encoder), ("torso", torso)),
            (("torso", torso), ("head", head)),
        ):
            out_dim = getattr(first, "output_dim", None)
            in_dim = getattr(second, "input_dim", None)
            if out_dim is not None and in_dim is not None and out_dim != in_dim:
                raise ValueError(
                    f"{first_name}.output_dim={out_dim} does not match {second_name}.input_dim={in_dim}."
                )
        self.encoder = encoder
        self.torso = torso
        self.head = head

    def forward(self, observation: torch.Tensor) -> Any:
        """head(torso(encoder(observation))): observation [..., *obs_shape] -> the head's output."""
        return self.head(self.torso(self.encoder(observation)))
