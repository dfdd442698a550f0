"""Heads: the last stage of encoder -> torso -> head.

A head turns the torso's features into what an agent's loss consumes:
action values, a bounded action, a distribution over actions, or a state
value. Every head exposes ``input_dim``; all outputs keep the leading batch
dimensions of their input.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import distributions as D
from torch import nn


class DiscreteQHead(nn.Module):
    """Action values Q(s, .) of shape ``[*B, num_actions]``.

    With ``dueling=True`` (Wang et al., 2016) the head computes a state value
    V(s) and advantages A(s, a) and combines them as
    Q = V + A - mean_a A, which pins V to the mean action value so the two
    streams are identifiable.
    """

    def __init__(self, input_dim: int, num_actions: int, dueling: bool = False) -> None:
        super().__init__()
        if num_actions <= 0:
            raise ValueError(f"num_actions must be positive, got {num_actions}.")
        self.input_dim = input_dim
        self.num_actions = num_actions
        self.dueling = dueling
        self.advantage = nn.Linear(input_dim, num_actions)
        if dueling:
            self.value = nn.Linear(input_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float32 [..., input_dim] -> Q-values [..., num_actions]."""
        advantage = self.advantage(features)
        if not self.dueling:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


class DeterministicHead(nn.Module):
    """A deterministic action inside a box, for DDPG-style actors.

    The output is low + (tanh(x) + 1) / 2 * (high - low) per action
    dimension, so x = 0 maps to the box's midpoint. The bounds are buffers:
    they move with ``.to(device)`` and are saved in the state dict, but are
    not trained. The result is clamped to [low, high] because the affine map
    can overshoot a bound by one rounding error when tanh saturates.
    """

    def __init__(self, input_dim: int, action_minimum: ArrayLike, action_maximum: ArrayLike) -> None:
        super().__init__()
        low, high = np.broadcast_arrays(
            np.asarray(action_minimum, dtype=np.float32), np.asarray(action_maximum, dtype=np.float32)
        )
        if low.ndim != 1:
            raise ValueError(f"action bounds must be 1-D, got shape {low.shape}.")
        if not np.all(np.isfinite(low) & np.isfinite(high)) or np.any(low >= high):
            raise ValueError(f"need finite bounds with low < high, got low={low}, high={high}.")
        self.input_dim = input_dim
        self.action_dim = low.shape[0]
        self.linear = nn.Linear(input_dim, self.action_dim)
        self.register_buffer("action_minimum", torch.tensor(low))
        self.register_buffer("action_maximum", torch.tensor(high))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float32 [..., input_dim] -> actions [..., action_dim] inside [action_minimum, action_maximum]."""
        return self.squash(self.linear(features))

    def squash(self, pre_activation: torch.Tensor) -> torch.Tensor:
        """The pre-tanh output x [..., action_dim] (``self.linear(features)``) -> its action in the box."""
        unit = (torch.tanh(pre_activation) + 1.0) * 0.5
        action = self.action_minimum + unit * (self.action_maximum - self.action_minimum)
        return torch.clamp(action, self.action_minimum, self.action_maximum)


class CategoricalHead(nn.Module):
    """A categorical policy over ``num_actions`` discrete actions (from logits).

    ``validate_args`` is passed to the distribution (None: torch's default,
    on unless Python runs with -O). Turning it off saves ~30 us per call,
    more than a small MLP's forward pass, which matters when acting one
    step at a time.
    """

    def __init__(self, input_dim: int, num_actions: int, validate_args: bool | None = None) -> None:
        super().__init__()
        if num_actions <= 0:
            raise ValueError(f"num_actions must be positive, got {num_actions}.")
        self.input_dim = input_dim
        self.num_actions = num_actions
        self.validate_args = validate_args
        self.logits = nn.Linear(input_dim, num_actions)

    def forward(self, features: torch.Tensor) -> D.Categorical:
        """float32 [..., input_dim] -> a Categorical over num_actions with batch shape [...]."""
        return D.Categorical(logits=self.logits(features), validate_args=self.validate_args)


class MultiCategorical(D.Distribution):
    """Independent categoricals over the k components of a MultiDiscrete action.

    ``logits`` [..., sum(nvec)] hold each component's logits one after the
    other; an action is int [..., k]. ``log_prob`` and ``entropy`` sum over
    the components (the joint of independent factors), ``mode`` takes each
    component's argmax. RLlib's ``MultiCategorical`` and stable-baselines3's
    ``MultiCategoricalDistribution`` define the same distribution.
    """

    arg_constraints: dict = {}

    def __init__(self, logits: torch.Tensor, nvec: tuple[int, ...], validate_args: bool | None = None) -> None:
        self.logits = logits
        self.nvec = tuple(int(n) for n in nvec)
        self.components = [
            D.Categorical(logits=part, validate_args=validate_args) for part in torch.split(logits, self.nvec, -1)
        ]
        super().__init__(logits.shape[:-1], torch.Size([len(self.nvec)]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """int [..., k] actions -> float32 [...], the sum of the components' log-probabilities."""
        value = value.long()
        return torch.stack([c.log_prob(value[..., i]) for i, c in enumerate(self.components)], -1).sum(-1)

    def entropy(self) -> torch.Tensor:
        """float32 [...]: the sum of the components' entropies."""
        return torch.stack([c.entropy() for c in self.components], -1).sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """int64 [*sample_shape, ..., k]."""
        return torch.stack([c.sample(sample_shape) for c in self.components], -1)

    @property
    def mode(self) -> torch.Tensor:
        """int64 [..., k]: each component's most likely value."""
        return torch.stack([c.logits.argmax(-1) for c in self.components], -1)


class MultiCategoricalHead(nn.Module):
    """A policy over MultiDiscrete actions: one Linear to sum(nvec) logits, read as
    ``MultiCategorical(logits, nvec)`` (``validate_args`` as ``CategoricalHead``)."""

    def __init__(self, input_dim: int, nvec: tuple[int, ...], validate_args: bool | None = None) -> None:
        super().__init__()
        self.nvec = tuple(int(n) for n in nvec)
        if not self.nvec or any(n <= 0 for n in self.nvec):
            raise ValueError(f"nvec must be positive, got {nvec}.")
        self.input_dim = input_dim
        self.validate_args = validate_args
        self.logits = nn.Linear(input_dim, sum(self.nvec))

    def forward(self, features: torch.Tensor) -> MultiCategorical:
        """float32 [..., input_dim] -> a MultiCategorical with batch shape [...] and event shape [k]."""
        return MultiCategorical(self.logits(features), self.nvec, validate_args=self.validate_args)


class DiagGaussianHead(nn.Module):
    """A diagonal Gaussian policy over ``action_dim`` continuous actions.

    Returns ``Independent(Normal(mean, std), 1)`` so ``log_prob`` and
    ``entropy`` sum over action dimensions and have shape ``[*B]``.

    By default the log standard deviation is a learned vector shared by all
    states (as in PPO/A2C for continuous control), initialised to
    ``init_log_std``. With ``state_dependent_std=True`` it is a second linear
    output whose bias starts at ``init_log_std``. Either way the log-std is
    clamped to [min_log_std, max_log_std] (natural-log units) so the
    distribution never collapses to zero width or explodes.
    ``validate_args`` is passed to the distributions, as in ``CategoricalHead``.
    """

    def __init__(
        self,
        input_dim: int,
        action_dim: int,
        state_dependent_std: bool = False,
        init_log_std: float = 0.0,
        min_log_std: float = -20.0,
        max_log_std: float = 2.0,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__()
        if action_dim <= 0:
            raise ValueError(f"action_dim must be positive, got {action_dim}.")
        if not min_log_std <= init_log_std <= max_log_std:
            raise ValueError(
                f"need min_log_std <= init_log_std <= max_log_std, got "
                f"{min_log_std}, {init_log_std}, {max_log_std}."
            )
        self.input_dim = input_dim
        self.action_dim = action_dim
        self.state_dependent_std = state_dependent_std
        self.min_log_std = min_log_std
        self.max_log_std = max_log_std
        self.validate_args = validate_args
        self.mean = nn.Linear(input_dim, action_dim)
        if state_dependent_std:
            self.log_std_layer = nn.Linear(input_dim, action_dim)
            nn.init.constant_(self.log_std_layer.bias, init_log_std)
        else:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def forward(self, features: torch.Tensor) -> D.Independent:
        """float32 [..., input_dim] -> a diagonal Gaussian with event shape [action_dim], batch shape [...]."""
        mean = self.mean(features)
        if self.state_dependent_std:
            log_std = self.log_std_layer(features)
        else:
            log_std = self.log_std.expand_as(mean)
        std = torch.clamp(log_std, self.min_log_std, self.max_log_std).exp()
        normal = D.Normal(mean, std, validate_args=self.validate_args)
        return D.Independent(normal, 1, validate_args=self.validate_args)


class ValueHead(nn.Module):
    """A scalar state value V(s) of shape ``[*B]`` (the trailing 1 squeezed)."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.linear = nn.Linear(input_dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float32 [..., input_dim] -> state values [...]."""
        return self.linear(features).squeeze(-1)
