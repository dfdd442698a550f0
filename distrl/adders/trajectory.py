"""The trajectory adder: fixed-length segments of consecutive steps (A2C-style).

One adder follows one environment stream and cuts it into segments of
T = ``sequence_length`` steps, one segment every T steps. Segments run across
episode boundaries: a segment may hold the end of one episode and the start of
the next, and ``last[t]`` marks the step that ended an episode. For step t of
a segment (see ``distrl.types.Trajectory``):

    observation[t]       o_t, the observation the action was chosen from
    action[t]            a_t
    reward[t]            r_t, returned by the step
    discount[t]          d_t, the environment discount (0 at a termination)
    last[t]              True when the step ended its episode
    next_observation[t]  the observation the step produced; at a termination
                         or truncation the episode's final observation
    mask[t]              False only for padding
    extras[t]            the extras passed with a_t (e.g. ``policy_version``)

How a learner computes GAE on a segment. With V the critic,

    delta_t = r_t + gamma * d_t * V(next_observation[t]) - V(observation[t])
    A_t     = delta_t + gamma * lambda * d_t * (1 - last[t]) * mask[t+1] * A_{t+1}

taken backwards from A_T = 0 (mask[T] = False), and return targets
A_t + V(observation[t]). The three bootstrapping cases all fall out:

* terminated (last, d = 0): delta_t = r_t - V(o_t), no bootstrap and no
  advantage carried over from the next episode;
* truncated (last, d = 1): delta_t bootstraps from V(next_observation[t]),
  the episode's final observation, and nothing is carried over;
* unfinished segment end (t = T - 1, or the last unpadded step, with
  last = False): delta_t bootstraps from V(next_observation[t]) and the
  recursion stops there because A_T = 0 (or mask[t+1] = False).

Losses are averaged over steps with mask True.

``flush`` ends the current segment early: the real steps are followed by
zero-filled padding steps with ``mask`` False (and reward 0, discount 0,
last False), then every buffered segment is inserted. Full segments are
inserted as one batch of ``max_batch_size`` segments, each leaf of shape
[batch, T, ...].
"""

from __future__ import annotations

import dm_env
import numpy as np

from distrl.adders.base import Adder
from distrl.adders.columns import ColumnBuffer
from distrl.replay.client import ReplayClient
from distrl.types import Nest, Trajectory
from distrl.utils.nests import copy_nest, zeros_like_nest


class TrajectoryAdder(Adder):
    """Writes fixed-length ``Trajectory`` segments (see the module docstring).

    Rewards and environment discounts must be scalars; they are stored as
    float32, ``last`` and ``mask`` as bool. Observations and actions are
    copied when they arrive; ``extras`` are stored as given until the next
    insert.
    """

    def __init__(
        self,
        client: ReplayClient,
        sequence_length: int,
        max_batch_size: int = 1,
    ) -> None:
        """Creates the adder.

        Args:
          client: where stacked batches of segments are inserted.
          sequence_length: T >= 1, the number of steps per segment.
          max_batch_size: number of segments per ``insert`` call (>= 1).
        """
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}.")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}.")
        self._client = client
        self._sequence_length = sequence_length
        self._max_batch_size = max_batch_size

        self._observation: Nest | None = None
        self._episode_start = 0
        self._num_segments = 0

        self._buffer = ColumnBuffer({
            "observation": None, "action": None, "reward": np.float32, "discount": np.float32,
            "last": bool, "next_observation": None, "mask": bool, "extras": None,
        })

    @property
    def sequence_length(self) -> int:
        return self._sequence_length

    def add_first(self, timestep: dm_env.TimeStep) -> None:
        """Starts an episode; the current segment carries on across the boundary.

        If the previous episode is still open (steps recorded and no LAST
        seen), its steps in the current segment are dropped first, as by
        ``reset``.
        """
        if not timestep.first():
            raise ValueError("add_first needs a FIRST timestep.")
        if self._observation is not None and len(self._buffer) > self._episode_start:
            self.reset()
        self._observation = copy_nest(timestep.observation)
        self._episode_start = len(self._buffer)

    def add(self, action: Nest, next_timestep: dm_env.TimeStep, extras: Nest = ()) -> None:
        """Records a_t, the timestep it produced and the extras of step t."""
        if self._observation is None:
            raise ValueError("add called without an open episode: call add_first first.")
        if next_timestep.first():
            raise ValueError("add got a FIRST timestep: use add_first.")
        next_observation = copy_nest(next_timestep.observation)
        last = next_timestep.last()
        self._buffer.append(
            self._observation, copy_nest(action), float(next_timestep.reward), float(next_timestep.discount),
            last, next_observation, True, extras,
        )
        self._observation = None if last else next_observation
        if len(self._buffer) == (self._num_segments + 1) * self._sequence_length:
            self._num_segments += 1
            if self._num_segments == self._max_batch_size:
                self._insert()

    def flush(self) -> None:
        """Pads the current partial segment (mask False) and inserts every buffered segment."""
        num_real = len(self._buffer) - self._num_segments * self._sequence_length
        if num_real:
            self._pad(self._sequence_length - num_real)
            self._num_segments += 1
        if self._num_segments:
            self._insert()

    def _pad(self, num_pad: int) -> None:
        """Appends ``num_pad`` zero-filled steps with mask False."""
        buffer = self._buffer
        observation = zeros_like_nest(buffer.last("observation"))
        action = zeros_like_nest(buffer.last("action"))
        extras = zeros_like_nest(buffer.last("extras"))
        buffer.extend(num_pad, observation, action, 0.0, 0.0, False, observation, False, extras)

    def _insert(self) -> None:
        """Stacks the buffered full segments into [batch, T, ...] and inserts them."""
        batch = Trajectory(**self._buffer.take((self._num_segments, self._sequence_length)))
        self._num_segments = 0
        self._episode_start = 0
        self._client.insert(batch, priorities=None)

    def get_state(self) -> dict:
        """The steps of the current segments and where the open episode starts in them."""
        return {"buffer": self._buffer.get_state(), "observation": self._observation,
                "episode_start": self._episode_start, "num_segments": self._num_segments}

    def set_state(self, state: dict) -> None:
        self._buffer.set_state(state["buffer"])
        self._observation = state["observation"]
        self._episode_start = int(state["episode_start"])
        self._num_segments = int(state["num_segments"])

    def reset(self) -> None:
        """Drops the open episode's steps from the current segment.

        Steps already in full segments stay (those segments end with
        last = False and bootstrap from their final next_observation, which
        is still correct); steps of earlier, finished episodes in the current
        segment stay too.
        """
        cut = max(self._episode_start, self._num_segments * self._sequence_length)
        if self._observation is not None:
            self._buffer.truncate(cut)
        self._observation = None
        self._episode_start = len(self._buffer)
