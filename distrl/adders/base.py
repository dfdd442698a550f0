"""The Adder interface: turns a stream of timesteps into replay items."""

from __future__ import annotations

import abc

import dm_env

from distrl.types import Nest


class Adder(abc.ABC):
    """Buffers experience from one environment stream and inserts it in batches.

    An adder never makes one replay call per step: it accumulates items and
    hands them to its ``ReplayClient`` as one stacked batch.
    """

    @abc.abstractmethod
    def add_first(self, timestep: dm_env.TimeStep) -> None:
        """Starts a new episode with its FIRST timestep."""

    @abc.abstractmethod
    def add(self, action: Nest, next_timestep: dm_env.TimeStep, extras: Nest = ()) -> None:
        """Records ``action`` and the timestep it produced; ``extras`` belong to the step taken."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Inserts whatever items are buffered now."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Drops the partial episode state (not the already formed items)."""

    def get_state(self) -> dict | None:
        """Everything buffered (the open window, formed items not inserted yet), for checkpoints;
        None when the adder cannot be checkpointed."""
        return None

    def set_state(self, state: dict) -> None:
        """Restores ``get_state`` output."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore a checkpointed state")
