"""The n-step transition adder for N environments stepped in lockstep, vectorised across them.

It writes the transitions ``NStepTransitionAdder`` writes for each
environment (same return, discount and next observation; see ``nstep.py``
for the maths; the one exception is below), but instead of forming each transition in Python when its
window fills, it records every step into preallocated arrays [rows, N] and
forms a whole block of transitions with a few numpy operations per insert.

Why: an actor stepping 8 CartPole environments spent about 28% of its
thread in the per-environment adders, forming each transition, stacking
16-item columns per environment and concatenating the 8 batches into one
insert (py-spy on ``python -m distrl.bench actor``). Alone in one process
that path cost 5.5 us per env step (8 environments, n = 3, 16 steps per
insert), this one 2.0 us: a step is a few array writes. See BENCHMARKS.md,
"Actor efficiency".

Each leaf is written into arrays allocated from the first item, so later
items must have the same shapes and dtypes; the environment boundary
(``distrl.envs.validation``) checks observations against their spec.

How: the adder keeps a row per vector step. Row r holds, for every
environment j, the observation acted on, the action, the reward and
discount of the step, the observation it returned, whether it was LAST and
whether a transition starts there. A transition starting at row u needs rows
u .. u + n - 1, so once ``steps_per_insert + n - 1`` rows are complete the
first ``steps_per_insert`` rows' transitions are formed and inserted as one
batch (N x ``steps_per_insert`` transitions in steady state) and the last
n - 1 rows move to the front. The adder is used through N ``lanes()``, one
``Adder`` per environment, so the actor and the loops see the same
per-environment interface as with N ``NStepTransitionAdder``s.

Lockstep is required: every lane adds exactly one step per vector step,
and lanes restart (``add_first``) only once every lane has added its step
(``VectorEnvironmentLoop``'s order). A lane that adds twice in one step
raises ValueError, as does one that adds after its episode ended (LAST)
without ``add_first``. A lane restarted before the step ends drops the step
it added and the transitions that step would complete, and unlike
``NStepTransitionAdder`` so does the end of an episode it added there. That
happens when an environment raises in the middle of a vector step and the
env actor restarts all of them, once per environment failure.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import dm_env
import numpy as np
import tree

from distrl.adders.base import Adder
from distrl.adders.nstep import check_nstep_arguments, checked_priorities
from distrl.replay.client import ReplayClient
from distrl.types import Nest, Transition
from distrl.utils.nests import make_unflattener


def _leaves(value: Nest) -> Sequence[Any]:
    """The leaves of ``value`` in dm-tree order, with fast paths for a single array or scalar,
    a flat dict of arrays (DQN's extras) and the empty tuple."""
    if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return (value,)
    if type(value) is dict and all(isinstance(v, (np.ndarray, np.generic)) for v in value.values()):
        return [value[key] for key in sorted(value)]
    if isinstance(value, tuple) and not value:
        return ()
    return tree.flatten(value)


class _Column:
    """One nest (observation, action or extras) stored leaf by leaf as arrays [rows, N, *leaf shape]."""

    def __init__(self, example: Nest, rows: int, num_envs: int) -> None:
        leaves = [np.asarray(leaf) for leaf in _leaves(example)]
        self.arrays = [np.zeros((rows, num_envs, *leaf.shape), leaf.dtype) for leaf in leaves]
        self.unflatten = make_unflattener(example) if leaves else (lambda _: example)
        # A plain array or scalar is its own only leaf, and a flat dict of leaves (DQN's extras) is
        # read key by key: both are written without flattening, the usual case.
        self._single = self.arrays[0] if isinstance(example, (np.ndarray, np.generic, int, float, bool)) else None
        self._keys = sorted(example) if type(example) is dict and len(leaves) == len(example) else None

    def write(self, row: int, env: int, value: Nest) -> None:
        """Writes one item at (row, env)."""
        if self._single is not None:
            self._single[row, env] = value
        elif self._keys is not None and type(value) is dict and len(value) == len(self._keys):
            for array, key in zip(self.arrays, self._keys):
                array[row, env] = value[key]
        else:
            self.write_leaves(row, env, _leaves(value))

    def write_leaves(self, row: int, env: int, leaves: Sequence[Any]) -> None:
        """Writes one item, given as its leaves (``_leaves``), at (row, env)."""
        for array, leaf in zip(self.arrays, leaves):
            array[row, env] = leaf

    def copy_row(self, target: int, source: "_Column", row: int) -> None:
        """Row ``target`` of this column becomes row ``row`` of ``source`` (same leaves)."""
        for array, other in zip(self.arrays, source.arrays):
            array[target] = other[row]

    def gather(self, rows: np.ndarray, envs: np.ndarray) -> Nest:
        """The nest of items (rows[k], envs[k]) for every k: leaves [len(rows), *leaf shape] (copies)."""
        return self.unflatten([array[rows, envs] for array in self.arrays])

    def shift(self, start: int, stop: int) -> None:
        """Moves rows [start, stop) to the front."""
        for array in self.arrays:
            array[: stop - start] = array[start:stop]


class VectorNStepTransitionAdder:
    """n-step transitions of N lockstep environments, formed a block at a time (see the module docstring).

    Args:
      client: where each block is inserted, as one stacked ``Transition`` batch.
      num_envs: N >= 1 environments, one lane each.
      n_step: n >= 1.
      discount: the agent's gamma in [0, 1].
      steps_per_insert: vector steps per insert (>= 1): a block is N x this many transitions
        (DQN's and DDPG's ``adder_batch_size``, per environment as before).
      priority_fn: as ``NStepTransitionAdder``'s: a block of B transitions -> float64 [B].

    Raises ValueError for an out-of-range argument.
    """

    def __init__(self, client: ReplayClient, num_envs: int, n_step: int, discount: float, steps_per_insert: int,
                 priority_fn: Callable[[Transition], np.ndarray] | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        check_nstep_arguments(n_step, discount)
        if steps_per_insert < 1:
            raise ValueError(f"steps_per_insert must be >= 1, got {steps_per_insert}.")
        self._client = client
        self._num_envs = num_envs
        self._n_step = n_step
        self._gamma = float(discount)
        self._block = steps_per_insert
        self._priority_fn = priority_fn
        self._rows = steps_per_insert + n_step - 1  # Step rows; the observation column has one more.
        self._reward = np.zeros((self._rows, num_envs), np.float64)
        self._discount = np.zeros((self._rows, num_envs), np.float64)
        self._last = np.zeros((self._rows, num_envs), bool)
        self._starts = np.zeros((self._rows, num_envs), bool)  # A transition starts at (row, env).
        self._observation: _Column | None = None  # Allocated from the first observation.
        self._next_observation: _Column | None = None
        self._action: _Column | None = None
        self._extras: _Column | None = None
        self._row = 0  # The vector step being added.
        self._open = [False] * num_envs
        self._added = [False] * num_envs
        self._step_rewards = [0.0] * num_envs  # The current vector step's, until it ends.
        self._step_discounts = [0.0] * num_envs
        self._num_added = 0
        self._episode_start = [0] * num_envs  # Row of each open episode's first step.

    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def n_step(self) -> int:
        return self._n_step

    def lanes(self) -> list[Adder]:
        """One ``Adder`` per environment, all writing into this adder."""
        return [_Lane(self, index) for index in range(self._num_envs)]

    def add_first(self, env: int, timestep: dm_env.TimeStep) -> None:
        """Starts an episode of environment ``env``. One still open there is dropped first (its
        transitions whose n steps are not all recorded are not written), and so is a step this
        environment added to a vector step the others have not finished (an environment that
        raised mid-step makes the env actor restart them all)."""
        if not timestep.first():
            raise ValueError("add_first needs a FIRST timestep.")
        if self._open[env] or self._added[env]:
            self._drop_open_episode(env)
        if self._observation is None:
            self._observation = _Column(timestep.observation, self._rows + 1, self._num_envs)
            self._next_observation = _Column(timestep.observation, self._rows, self._num_envs)
        self._observation.write(self._row, env, timestep.observation)
        self._open[env] = True
        self._episode_start[env] = self._row

    def add(self, env: int, action: Nest, next_timestep: dm_env.TimeStep, extras: Nest = ()) -> None:
        """Records environment ``env``'s step of the current vector step: its action, the timestep
        it produced and the step's extras. The vector step ends when all N environments added."""
        if not self._open[env]:
            raise ValueError(f"add called for environment {env} without an open episode: call add_first first.")
        if self._added[env]:
            raise ValueError(
                f"environment {env} added twice in one vector step: the {self._num_envs} lanes of a "
                f"VectorNStepTransitionAdder must each add once per step (lockstep)")
        if next_timestep.first():
            raise ValueError("add got a FIRST timestep: use add_first.")
        row = self._row
        if self._action is None:
            self._action = _Column(action, self._rows, self._num_envs)
            self._extras = _Column(extras, self._rows, self._num_envs)
        self._action.write(row, env, action)
        self._extras.write(row, env, extras)
        self._step_rewards[env] = next_timestep.reward  # Rows of scalars are written at the step's end.
        self._step_discounts[env] = next_timestep.discount
        self._next_observation.write(row, env, next_timestep.observation)
        if next_timestep.last():
            self._last[row, env] = True
            self._open[env] = False
        self._added[env] = True
        self._num_added += 1
        if self._num_added == self._num_envs:
            self._end_step()

    def _end_step(self) -> None:
        row = self._row
        self._reward[row] = self._step_rewards
        self._discount[row] = self._step_discounts
        self._starts[row] = True  # Every environment added a step to this row.
        # What each environment acts on next; add_first overwrites it for one that restarts.
        self._observation.copy_row(row + 1, self._next_observation, row)
        self._added = [False] * self._num_envs
        self._num_added = 0
        full = self._row + 1 == self._rows
        try:
            if full:
                self._insert_formed(self._block, recorded=self._rows)
        finally:  # Rows stay consistent when the insert or the priority_fn raises (the block is lost).
            if full:
                self._shift(self._block)
            self._row += 1

    def _drop_open_episode(self, env: int) -> None:
        """Unmarks the starts of ``env``'s current episode whose n steps are not all recorded, its
        step in the current vector step included (the row it used is rewritten by the next one)."""
        first_incomplete = max(self._episode_start[env], self._row - self._n_step + 1)
        self._starts[first_incomplete:self._row + 1, env] = False
        self._last[self._row, env] = False
        self._open[env] = False
        if self._added[env]:
            self._added[env] = False
            self._num_added -= 1

    def _insert_formed(self, count: int, recorded: int) -> None:
        """Forms and inserts the transitions starting in rows [0, count) whose n steps, or whose
        episode's end, lie within the recorded rows [0, recorded), and unmarks their starts.

        For start row u and offsets i < n, step u + i belongs to the transition while no LAST
        came before it; the return sums gamma**i times the discounts before i times the rewards
        of those steps, the discount is that weight after the last of them, and the next
        observation is what the last of them returned (as in ``NStepTransitionAdder``)."""
        n, gamma = self._n_step, self._gamma
        starts = self._starts[:count]
        if not starts.any():
            return
        reward, discount, last, recorded_rows = self._reward, self._discount, self._last, None
        if count + n - 1 > recorded:  # A flush: some windows run past the recorded rows.
            padded = count + n - 1
            reward, discount = np.zeros((padded, self._num_envs)), np.zeros((padded, self._num_envs))
            last = np.zeros((padded, self._num_envs), bool)
            for target, source in ((reward, self._reward), (discount, self._discount), (last, self._last)):
                target[:recorded] = source[:recorded]
            recorded_rows = (np.arange(padded) < recorded)[:, None]
        ret = np.zeros(starts.shape)
        weight = np.ones(starts.shape)  # gamma**i times the discounts before offset i.
        alive = starts.copy()  # Offset i is still in the start's episode.
        unrecorded = np.zeros(starts.shape, bool)  # The window reaches past the recorded rows.
        horizon = np.zeros(starts.shape, np.int64)
        for offset in range(n):
            rows = slice(offset, offset + count)
            if recorded_rows is not None:
                unrecorded |= alive & ~recorded_rows[rows]
                alive = alive & recorded_rows[rows]
            ret += np.where(alive, weight * reward[rows], 0.0)
            weight = np.where(alive, weight * gamma * discount[rows], weight)
            horizon += alive
            alive = alive & ~last[rows]
        formed = starts & ~unrecorded
        start_rows, envs = np.nonzero(formed)
        if not len(start_rows):
            return
        end_rows = start_rows + horizon[start_rows, envs] - 1
        batch = Transition(
            observation=self._observation.gather(start_rows, envs),
            action=self._action.gather(start_rows, envs),
            reward=ret[start_rows, envs].astype(np.float32),
            discount=weight[start_rows, envs].astype(np.float32),
            next_observation=self._next_observation.gather(end_rows, envs),
            extras=self._extras.gather(start_rows, envs),
        )
        priorities = None
        if self._priority_fn is not None:
            priorities = checked_priorities(self._priority_fn, batch, len(start_rows), "VectorNStepTransitionAdder")
        self._starts[:count] &= ~formed
        self._client.insert(batch, priorities=priorities)

    def _shift(self, count: int) -> None:
        """Drops rows [0, count): the rows after them (up to the current one) move to the front."""
        stop = self._row + 1  # Step rows in use, the current (maybe partly added) one included.
        for array in (self._reward, self._discount, self._last, self._starts):
            array[: stop - count] = array[count:stop]
            array[stop - count:] = False if array.dtype == bool else 0.0
        for column in (self._next_observation, self._action, self._extras):
            if column is not None:
                column.shift(count, stop)
        if self._observation is not None:
            self._observation.shift(count, stop + 1)
        self._row -= count
        self._episode_start = [max(0, start - count) for start in self._episode_start]

    def flush(self) -> None:
        """Inserts every formed transition: those whose n steps are recorded and those of episodes
        that ended (no call when there is none). Transitions of open episodes' last n - 1 steps wait
        for their windows to fill."""
        recorded = self._row  # Rows [0, _row) are complete; the current one may be partly added.
        self._insert_formed(recorded, recorded=recorded)
        if recorded - self._n_step + 1 > 0:
            self._shift(recorded - self._n_step + 1)

    def reset(self, env: int) -> None:
        """Drops environment ``env``'s open episode (as ``add_first`` does); formed transitions stay."""
        if self._open[env]:
            self._drop_open_episode(env)


class _Lane(Adder):
    """Environment ``index``'s view of a ``VectorNStepTransitionAdder``: the one-stream ``Adder``
    interface the actors use. ``flush`` flushes the whole adder. Not checkpointable
    (``get_state`` is None): a vector loop's resume is inexact anyway (its environments are
    mid-episode)."""

    def __init__(self, adder: VectorNStepTransitionAdder, index: int) -> None:
        self._adder = adder
        self._index = index

    def add_first(self, timestep: dm_env.TimeStep) -> None:
        self._adder.add_first(self._index, timestep)

    def add(self, action: Nest, next_timestep: dm_env.TimeStep, extras: Nest = ()) -> None:
        self._adder.add(self._index, action, next_timestep, extras)

    def flush(self) -> None:
        self._adder.flush()

    def reset(self) -> None:
        self._adder.reset(self._index)
