"""The n-step transition adder: one ``Transition`` per environment step.

For the step taken at time t, with k <= n the number of steps actually
available (k < n only when the episode ends within n steps of t), the adder
writes

    observation      = o_t
    action           = a_t
    reward           R = sum_{i<k} gamma**i * (d_t * ... * d_{t+i-1}) * r_{t+i}
    discount         D = prod_{i<k} gamma * d_{t+i}
    next_observation = o_{t+k}
    extras           = the extras passed with a_t

where r_{t+i} and d_{t+i} are the reward and environment discount returned by
step t+i. The learner's target is then R + D * V(next_observation) in every
case:

* inside an episode k = n and the target is the usual n-step return;
* at a termination (LAST with d = 0) the tail transitions have D = 0, so
  nothing is bootstrapped past the end;
* at a truncation (LAST with d = 1) the tail transitions keep D = gamma**k
  (times any discounts < 1 the environment gave) and bootstrap from the
  episode's final observation.

No transition spans an episode boundary, and no transition is written for
step t until either n steps have followed it or the episode has ended.

Transitions are buffered and handed to the ``ReplayClient`` as one stacked
batch (every leaf gains a leading batch axis) each time ``max_batch_size``
of them are ready; ``flush`` inserts the remainder. A ``priority_fn`` gives
each batch its initial priorities at that point (Ape-X's actor-computed
priorities, Horgan et al. 2018; Acme's adders take ``priority_fns`` for the
same purpose); without one the table gives new items its maximum priority.
"""

from __future__ import annotations

import collections
from typing import Callable, NamedTuple

import dm_env
import numpy as np

from distrl.adders.base import Adder
from distrl.adders.columns import ColumnBuffer
from distrl.replay.client import ReplayClient
from distrl.types import Nest, Transition
from distrl.utils.nests import copy_nest


def checked_priorities(priority_fn: Callable[[Transition], np.ndarray], batch: Transition, size: int,
                       owner: str) -> np.ndarray:
    """``priority_fn(batch)`` as float64 [size]; raises ValueError naming ``owner`` unless each is finite and >= 0."""
    priorities = np.asarray(priority_fn(batch), dtype=np.float64)
    if priorities.shape != (size,) or not (np.isfinite(priorities).all() and (priorities >= 0).all()):
        raise ValueError(
            f"{owner}: priority_fn must return {size} finite priorities >= 0 (float64 [{size}]), "
            f"got shape {priorities.shape} with values {np.ravel(priorities)[:4]}..."
        )
    return priorities


def check_nstep_arguments(n_step: int, discount: float) -> None:
    """Raises ValueError naming the argument unless n_step >= 1 and discount is in [0, 1]."""
    if n_step < 1:
        raise ValueError(f"n_step must be >= 1, got {n_step}.")
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}.")


class _Step(NamedTuple):
    """One step held in the n-step window."""

    observation: Nest
    action: Nest
    reward: float
    discount: float
    extras: Nest


class NStepTransitionAdder(Adder):
    """Writes n-step ``Transition`` items (see the module docstring for the maths).

    Rewards and environment discounts must be scalars. Sums and products are
    taken in float64 and stored as float32. Observations and actions are
    copied when they arrive, so an environment that mutates its observation
    array in place cannot corrupt buffered items; ``extras`` are stored as
    given until the next insert.
    """

    def __init__(
        self,
        client: ReplayClient,
        n_step: int,
        discount: float,
        max_batch_size: int = 64,
        priority_fn: Callable[[Transition], np.ndarray] | None = None,
    ) -> None:
        """Creates the adder.

        Args:
          client: where stacked batches of transitions are inserted.
          n_step: n >= 1, the number of environment steps summed per transition.
          discount: the agent's gamma in [0, 1].
          max_batch_size: number of transitions per ``insert`` call (>= 1).
          priority_fn: maps a stacked batch of B transitions to their initial
            priorities, float64 [B], each finite and >= 0 (ValueError otherwise,
            before the insert); None: the table's default for new items.
        """
        check_nstep_arguments(n_step, discount)
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}.")
        self._client = client
        self._n_step = n_step
        self._gamma = float(discount)
        self._max_batch_size = max_batch_size
        self._priority_fn = priority_fn

        self._window: collections.deque[_Step] = collections.deque()
        self._observation: Nest | None = None

        self._buffer = ColumnBuffer({
            "observation": None, "action": None, "reward": np.float32, "discount": np.float32,
            "next_observation": None, "extras": None,
        })

    @property
    def n_step(self) -> int:
        return self._n_step

    @property
    def num_buffered(self) -> int:
        """Transitions formed but not yet inserted."""
        return len(self._buffer)

    def add_first(self, timestep: dm_env.TimeStep) -> None:
        """Starts an episode. An episode still open (no LAST seen) is dropped first."""
        if not timestep.first():
            raise ValueError("add_first needs a FIRST timestep.")
        self._window.clear()
        self._observation = copy_nest(timestep.observation)

    def add(self, action: Nest, next_timestep: dm_env.TimeStep, extras: Nest = ()) -> None:
        """Records a_t, the timestep it produced and the extras of step t."""
        if self._observation is None:
            raise ValueError("add called without an open episode: call add_first first.")
        if next_timestep.first():
            raise ValueError("add got a FIRST timestep: use add_first.")
        next_observation = copy_nest(next_timestep.observation)
        window = self._window
        window.append(
            _Step(
                self._observation,
                copy_nest(action),
                float(next_timestep.reward),
                float(next_timestep.discount),
                extras,
            )
        )
        if len(window) == self._n_step:
            self._emit_window_head(next_observation)
            window.popleft()
        if next_timestep.last():
            self._emit_tail(next_observation)
            self._observation = None
        else:
            self._observation = next_observation

    def _emit_window_head(self, next_observation: Nest) -> None:
        """Emits the full n-step transition that starts at the oldest step."""
        gamma = self._gamma
        ret = 0.0
        disc = 1.0
        for step in self._window:
            ret += disc * step.reward
            disc *= gamma * step.discount
        self._append(self._window[0], ret, disc, next_observation)

    def _emit_tail(self, final_observation: Nest) -> None:
        """Emits the transitions of the last k < n steps of an ended episode.

        With R_j, D_j the return and discount of the tail transition starting
        at step j, R_j = r_j + gamma * d_j * R_{j+1} and
        D_j = gamma * d_j * D_{j+1}, with R = 0, D = 1 past the final step.
        """
        gamma = self._gamma
        steps = list(self._window)
        self._window.clear()
        tail: list[tuple[float, float]] = []
        ret = 0.0
        disc = 1.0
        for step in reversed(steps):
            ret = step.reward + gamma * step.discount * ret
            disc = gamma * step.discount * disc
            tail.append((ret, disc))
        for step, (ret, disc) in zip(steps, reversed(tail)):
            self._append(step, ret, disc, final_observation)

    def _append(self, step: _Step, ret: float, disc: float, next_observation: Nest) -> None:
        self._buffer.append(step.observation, step.action, ret, disc, next_observation, step.extras)
        if len(self._buffer) >= self._max_batch_size:
            self.flush()

    def flush(self) -> None:
        """Inserts all buffered transitions as one stacked batch (no call when empty)."""
        if not len(self._buffer):
            return
        batch = Transition(**self._buffer.take())
        priorities = None
        if self._priority_fn is not None:
            priorities = checked_priorities(self._priority_fn, batch, len(batch.reward), "NStepTransitionAdder")
        self._client.insert(batch, priorities=priorities)

    def get_state(self) -> dict:
        """The open window, the current observation and the formed transitions not inserted yet."""
        return {"window": [tuple(step) for step in self._window], "observation": self._observation,
                "buffer": self._buffer.get_state()}

    def set_state(self, state: dict) -> None:
        self._window = collections.deque(_Step(*step) for step in state["window"])
        self._observation = state["observation"]
        self._buffer.set_state(state["buffer"])

    def reset(self) -> None:
        """Drops the open episode's steps; already formed transitions stay buffered."""
        self._window.clear()
        self._observation = None
