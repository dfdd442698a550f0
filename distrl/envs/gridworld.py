"""The GridWorld of the Acme tutorial, as a native ``dm_env.Environment``.

The agent walks on a 9x10 grid of free cells and walls with four actions
(0 up, 1 right, 2 down, 3 left). Bumping into a wall costs -5 and leaves the
agent where it was; stepping onto the goal gives +10 and ends the episode
with discount 0; every other step gives 0 with the environment discount 0.9
(so the effective discount a learner applies is 0.9 times its own gamma, as
in the tutorial). An optional ``max_episode_len`` truncates the episode:
the last step is LAST with the usual discount 0.9, not 0, so learners still
bootstrap through it.

Coordinates are ``(y, x)`` = (row, column) tuples with (0, 0) top left.
"""

from __future__ import annotations

import collections
import enum
import operator
from collections.abc import Sequence

import dm_env
import numpy as np
from dm_env import specs

from distrl.types import Nest

Cell = tuple[int, int]

# Map legend: '#' wall, '.' free cell. Start and goal are given separately.
_OPEN_MAP = (
    "##########",
    "#........#",
    "#...##...#",
    "#...##...#",
    "#...##...#",
    "#........#",
    "#........#",
    "#........#",
    "##########",
)
_OBSTACLE_MAP = (
    "##########",
    "#.....#..#",
    "#...#....#",
    "#...##...#",
    "#...##...#",
    "#........#",
    "#........#",
    "#........#",
    "##########",
)

# task -> (map, start, goal); a goal of None is resampled at every reset.
TASKS: dict[str, tuple[tuple[str, ...], Cell, Cell | None]] = {
    "simple": (_OPEN_MAP, (2, 2), (7, 2)),
    "obstacle": (_OBSTACLE_MAP, (2, 2), (2, 8)),
    "random_goal": (_OPEN_MAP, (2, 2), None),
}

# Action index -> (dy, dx): up, right, down, left.
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


class ObservationType(enum.Enum):
    """What the agent observes.

    STATE_INDEX: int64 scalar ``y * width + x`` of the agent's cell.
    AGENT_ONEHOT: float32 (height, width), 1 at the agent's cell.
    GRID: float32 (3, height, width), channels-first for PyTorch convolutions:
        walls, agent, goal (each 1 where present, else 0).
    AGENT_GOAL_POS: float32 (4,) = (agent_y, agent_x, goal_y, goal_x), in cells.
    """

    STATE_INDEX = "state_index"
    AGENT_ONEHOT = "agent_onehot"
    GRID = "grid"
    AGENT_GOAL_POS = "agent_goal_pos"


def parse_map(rows: Sequence[str]) -> np.ndarray:
    """Returns the wall mask (bool, height x width) of a map drawn with '#' and '.'."""
    if len({len(row) for row in rows}) != 1:
        raise ValueError("all map rows must have the same length")
    unknown = set("".join(rows)) - {"#", "."}
    if unknown:
        raise ValueError(f"unknown map characters {sorted(unknown)}; use '#' and '.'")
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


def shortest_path_lengths(walls: np.ndarray, source: Cell) -> np.ndarray:
    """Breadth-first search distances, in steps, from ``source`` to every cell.

    Returns an int64 array shaped like ``walls`` with -1 for walls and cells
    that cannot be reached. Moves are the environment's four actions, so the
    distance is the minimal number of steps between the two cells.
    """
    height, width = walls.shape
    distances = np.full(walls.shape, -1, dtype=np.int64)
    distances[source] = 0
    frontier = collections.deque([source])
    while frontier:
        y, x = frontier.popleft()
        for dy, dx in _MOVES:
            ny, nx = y + dy, x + dx
            if 0 <= ny < height and 0 <= nx < width and not walls[ny, nx] and distances[ny, nx] < 0:
                distances[ny, nx] = distances[y, x] + 1
                frontier.append((ny, nx))
    return distances


class GridWorld(dm_env.Environment):
    """A deterministic grid navigation task (Acme tutorial semantics).

    Args:
      walls: bool mask (height, width), True for walls. Cells outside the
        grid count as walls.
      start_state: ``(y, x)`` where each episode starts.
      goal_state: ``(y, x)`` of the goal, or None to draw a new goal at each
        reset, uniformly among free cells reachable from the start (other
        than the start), from a generator seeded with ``seed``.
      observation_type: see ``ObservationType``.
      discount: environment discount on non-terminal steps.
      penalty_for_walls: reward for bumping into a wall (the agent stays).
      reward_goal: reward for reaching the goal (the episode terminates).
      max_episode_len: if set, the episode is truncated after this many steps.
      seed: seeds the goal sampling; unused when ``goal_state`` is fixed.
    """

    reward_threshold = None

    def checkpoint_state(self) -> dict:
        """The whole state (position, goal, step count, random generator), for checkpoints: a
        GridWorld resumes exactly, mid-episode too."""
        return {"state": list(self._state), "goal": list(self._goal_state), "episode_steps": self._episode_steps,
                "reset_next_step": self._reset_next_step, "rng": self._rng.bit_generator.state}

    def restore_checkpoint_state(self, state: dict) -> None:
        """Restores ``checkpoint_state`` output."""
        self._state = tuple(int(v) for v in state["state"])
        self._goal_state = tuple(int(v) for v in state["goal"])
        self._episode_steps = int(state["episode_steps"])
        self._reset_next_step = bool(state["reset_next_step"])
        self._rng.bit_generator.state = state["rng"]

    def render(self, cell_pixels: int = 16) -> np.ndarray:
        """The grid as uint8 RGB [rows * cell_pixels, columns * cell_pixels, 3]: walls dark grey,
        free cells white, the goal green and the agent blue (drawn last)."""
        height, width = self._walls.shape
        image = np.full((height, width, 3), 255, dtype=np.uint8)
        image[self._walls] = (64, 64, 64)
        image[self._goal_state] = (40, 180, 60)
        image[self._state] = (40, 90, 220)
        return np.repeat(np.repeat(image, cell_pixels, axis=0), cell_pixels, axis=1)

    @property
    def max_episode_steps(self) -> int | None:
        """The truncation limit (``max_episode_len``), None when episodes are unlimited."""
        return self._max_episode_len

    def __init__(
        self,
        walls: np.ndarray,
        start_state: Cell,
        goal_state: Cell | None = None,
        observation_type: ObservationType = ObservationType.STATE_INDEX,
        discount: float = 0.9,
        penalty_for_walls: float = -5.0,
        reward_goal: float = 10.0,
        max_episode_len: int | None = None,
        seed: int | None = None,
    ):
        self._walls = np.array(walls, dtype=bool)
        if self._walls.ndim != 2:
            raise ValueError(f"walls must be a 2-d mask, got shape {self._walls.shape}")
        self._walls.setflags(write=False)
        self._layout = -self._walls.astype(np.int8)
        self._layout.setflags(write=False)
        self._start_state = self._checked_cell(start_state, "start_state")
        self._distances_from_start = shortest_path_lengths(self._walls, self._start_state)
        self._fixed_goal = goal_state is not None
        self._rng = np.random.default_rng(seed)
        if goal_state is not None:
            goal_state = self._checked_cell(goal_state, "goal_state")
            if goal_state == self._start_state:
                raise ValueError(f"goal_state {goal_state} equals start_state")
            if self._distances_from_start[goal_state] < 0:
                raise ValueError(f"goal_state {goal_state} is unreachable from {self._start_state}")
            self._goal_state = goal_state
        else:
            self._goal_state = self._sample_goal()
        if max_episode_len is not None and max_episode_len < 1:
            raise ValueError(f"max_episode_len must be >= 1 or None, got {max_episode_len}")
        self._observation_type = ObservationType(observation_type)
        self._discount = np.float32(discount)
        self._penalty_for_walls = np.float32(penalty_for_walls)
        self._reward_goal = np.float32(reward_goal)
        self._max_episode_len = max_episode_len
        self._state = self._start_state
        self._episode_steps = 0
        self._reset_next_step = True
        self._discount_spec = specs.BoundedArray(
            shape=(), dtype=np.float32, minimum=0.0, maximum=float(self._discount), name="discount"
        )

    @classmethod
    def from_task(
        cls,
        task: str,
        observation_type: ObservationType = ObservationType.STATE_INDEX,
        max_episode_len: int | None = None,
        seed: int | None = None,
    ) -> GridWorld:
        """Builds one of the tutorial's tasks: ``simple``, ``obstacle``, ``random_goal``."""
        if task not in TASKS:
            raise ValueError(f"unknown gridworld task {task!r}; choose from {sorted(TASKS)}")
        rows, start, goal = TASKS[task]
        return cls(
            parse_map(rows),
            start_state=start,
            goal_state=goal,
            observation_type=observation_type,
            max_episode_len=max_episode_len,
            seed=seed,
        )

    def _checked_cell(self, cell: Cell, what: str) -> Cell:
        y, x = (int(c) for c in cell)
        height, width = self._walls.shape
        if not (0 <= y < height and 0 <= x < width) or self._walls[y, x]:
            raise ValueError(f"{what} {cell} is not a free cell of the {height}x{width} grid")
        return (y, x)

    def _sample_goal(self) -> Cell:
        reachable = np.argwhere(self._distances_from_start > 0)
        if len(reachable) == 0:
            raise ValueError("no free cell is reachable from the start state")
        y, x = reachable[self._rng.integers(len(reachable))]
        return (int(y), int(x))

    @property
    def layout(self) -> np.ndarray:
        """Read-only int8 (height, width) map: -1 for walls, 0 for free cells."""
        return self._layout

    @property
    def walls(self) -> np.ndarray:
        """Read-only bool (height, width) wall mask."""
        return self._walls

    @property
    def start_state(self) -> Cell:
        return self._start_state

    @property
    def goal_state(self) -> Cell:
        """The current goal (redrawn at each reset when the goal is random)."""
        return self._goal_state

    @property
    def state(self) -> Cell:
        """The agent's current cell."""
        return self._state

    def set_state(self, x: int, y: int) -> None:
        """Puts the agent on free cell (row ``y``, column ``x``), e.g. to test one move.

        Call it after ``reset``: the episode then continues from that cell.
        """
        self._state = self._checked_cell((y, x), "state")

    def distances_to_goal(self) -> np.ndarray:
        """Steps from every cell to the current goal (-1 for walls and unreachable cells)."""
        return shortest_path_lengths(self._walls, self._goal_state)

    def shortest_path_length(self) -> int:
        """The minimal number of steps from the start to the current goal."""
        return int(self._distances_from_start[self._goal_state])

    def _observation(self) -> np.ndarray:
        y, x = self._state
        kind = self._observation_type
        if kind is ObservationType.STATE_INDEX:
            return np.asarray(y * self._walls.shape[1] + x, dtype=np.int64)
        if kind is ObservationType.AGENT_GOAL_POS:
            return np.array((y, x) + self._goal_state, dtype=np.float32)
        if kind is ObservationType.AGENT_ONEHOT:
            obs = np.zeros(self._walls.shape, dtype=np.float32)
            obs[y, x] = 1.0
            return obs
        obs = np.zeros((3,) + self._walls.shape, dtype=np.float32)
        obs[0] = self._walls
        obs[1, y, x] = 1.0
        obs[(2,) + self._goal_state] = 1.0
        return obs

    def reset(self) -> dm_env.TimeStep:
        if not self._fixed_goal:
            self._goal_state = self._sample_goal()
        self._state = self._start_state
        self._episode_steps = 0
        self._reset_next_step = False
        return dm_env.TimeStep(dm_env.StepType.FIRST, None, None, self._observation())

    def step(self, action: Nest) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        index = operator.index(action)
        if not 0 <= index < len(_MOVES):
            raise ValueError(f"invalid gridworld action {action!r}; expected 0, 1, 2 or 3")
        dy, dx = _MOVES[index]
        y, x = self._state[0] + dy, self._state[1] + dx
        height, width = self._walls.shape
        self._episode_steps += 1
        if not (0 <= y < height and 0 <= x < width) or self._walls[y, x]:
            reward = self._penalty_for_walls
        else:
            self._state = (y, x)
            reward = np.float32(0.0)
            if self._state == self._goal_state:
                self._reset_next_step = True
                return dm_env.TimeStep(
                    dm_env.StepType.LAST, self._reward_goal, np.float32(0.0), self._observation()
                )
        step_type = dm_env.StepType.MID
        if self._max_episode_len is not None and self._episode_steps >= self._max_episode_len:
            step_type = dm_env.StepType.LAST
            self._reset_next_step = True
        return dm_env.TimeStep(step_type, reward, self._discount, self._observation())

    def observation_spec(self) -> specs.Array:
        height, width = self._walls.shape
        kind = self._observation_type
        if kind is ObservationType.STATE_INDEX:
            return specs.DiscreteArray(height * width, dtype=np.int64, name="observation")
        if kind is ObservationType.AGENT_GOAL_POS:
            upper = np.array([height - 1, width - 1] * 2, dtype=np.float32)
            return specs.BoundedArray((4,), np.float32, 0.0, upper, name="observation")
        shape = (height, width) if kind is ObservationType.AGENT_ONEHOT else (3, height, width)
        return specs.BoundedArray(shape, np.float32, 0.0, 1.0, name="observation")

    def action_spec(self) -> specs.DiscreteArray:
        return specs.DiscreteArray(len(_MOVES), dtype=np.int64, name="action")

    def reward_spec(self) -> specs.Array:
        return specs.Array((), np.float32, name="reward")

    def discount_spec(self) -> specs.BoundedArray:
        return self._discount_spec
