"""The small abstract core every component implements.

Components never know whether they run in one process or under Ray: only
``distrl.experiments`` wires them together.
"""

from __future__ import annotations

import abc
from typing import Any, Mapping, Sequence

import dm_env

from distrl.types import Nest, Params, Versioned


class Actor(abc.ABC):
    """Selects actions, feeds its adder and keeps its policy parameters fresh."""

    @abc.abstractmethod
    def select_action(self, observation: Nest) -> Nest:
        """Returns the action to take for a single (unbatched) observation."""

    @abc.abstractmethod
    def observe_first(self, timestep: dm_env.TimeStep) -> None:
        """Records the FIRST timestep of an episode."""

    @abc.abstractmethod
    def observe(self, action: Nest, next_timestep: dm_env.TimeStep) -> None:
        """Records the action taken and the timestep it produced."""

    @abc.abstractmethod
    def update(self, wait: bool = False) -> None:
        """Refreshes parameters from the variable source (and, in the single
        process mode, runs the learner steps that are due)."""


class BatchedActor(abc.ABC):
    """Acts for N environments at once: one batched inference per vector step.

    Environment ``index`` (0 <= index < N) keeps its own episode and adder
    stream; only action selection is batched. ``VectorEnvironmentLoop`` steps
    the N environments in lockstep and calls, per vector step,
    ``select_actions`` once, then ``observe`` (and ``observe_first`` after a
    reset) per environment, then ``update`` once.
    """

    @abc.abstractmethod
    def select_actions(self, observations: Nest) -> Nest:
        """Returns actions for stacked observations (every leaf has a leading
        axis of length N); every leaf of the result has the same leading axis."""

    @abc.abstractmethod
    def observe_first(self, index: int, timestep: dm_env.TimeStep) -> None:
        """Records the FIRST timestep of an episode of environment ``index``."""

    @abc.abstractmethod
    def observe(self, index: int, action: Nest, next_timestep: dm_env.TimeStep) -> None:
        """Records the action environment ``index`` took and the timestep it produced."""

    @abc.abstractmethod
    def update(self, wait: bool = False) -> None:
        """Refreshes parameters from the variable source (and, in the single
        process mode, runs the learner steps that are due)."""


class VariableSource(abc.ABC):
    """Anything that can hand out the latest parameters with their version."""

    @abc.abstractmethod
    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Params]]:
        """Returns ``Versioned(version, {name: params})`` for the named networks."""

    def get_newer_variables(self, names: Sequence[str], than_version: int) -> Versioned[Mapping[str, Params]]:
        """Like ``get_variables`` but of a version newer than ``than_version``.

        Synchronous on-policy actors call it after each round of data to wait
        for the update that data feeds. A source that advances in another
        process overrides it to wait (with a timeout); this default serves
        sources that advance in the caller's own thread (a learner in the
        single-process mode, which has stepped before the actor asks) and
        raises when no newer version exists, since waiting could never end.
        """
        versioned = self.get_variables(names)
        if versioned.version <= than_version:
            raise RuntimeError(
                f"{type(self).__name__} has version {versioned.version}, not newer than {than_version}, "
                f"and cannot advance while its caller waits"
            )
        return versioned


class Saveable(abc.ABC):
    """An object whose full state can be captured and restored."""

    @abc.abstractmethod
    def save(self) -> Mapping[str, Any]:
        """Returns a state dict (tensors, numpy arrays and plain Python values)."""

    @abc.abstractmethod
    def restore(self, state: Mapping[str, Any]) -> None:
        """Restores from a state dict produced by ``save``."""


class Worker(abc.ABC):
    """A long-running unit of work (environment loop, learner loop, evaluator)."""

    @abc.abstractmethod
    def run(self) -> None:
        """Runs until its budget is exhausted."""


class Learner(VariableSource, Saveable):
    """Consumes batches of experience and updates networks.

    Learners also have ``steps``, the updates made so far, which is the
    version ``get_variables`` reports; ``save()`` keeps it under ``"steps"``,
    and the distributed runtime sets it there before ``restore()`` so that a
    restarted learner's versions continue past those already published.
    """

    @abc.abstractmethod
    def step(self) -> Mapping[str, float]:
        """Makes exactly one update (``steps`` grows by one) and returns the metrics it logged.

        It takes from its dataset what one update needs: one ``SampleBatch``
        for the replay agents (DQN, DDPG); for A2C as many samples as it takes
        to gather ``batch_size`` fresh segments (one round per sample on Ray,
        stale segments dropped). The return value is ``{}`` except on the
        updates that log (every ``log_every``-th), which return the metrics
        written to the logger (name -> float). Raises whatever the dataset
        raises when it cannot deliver (e.g. ``TimeoutError`` from a replay wait).
        """

    def run(self, num_steps: int) -> None:
        """Runs ``num_steps`` learner steps."""
        for _ in range(num_steps):
            self.step()
