"""DeepMind Control Suite tasks (Tassa et al. 2018), as single-precision ``dm_env`` environments.

``DmControlEnvironment`` loads ``dm_control.suite.load(domain, task,
task_kwargs={"random": seed})``, which already is a ``dm_env.Environment``
(no detour through gymnasium), and changes only what distrl's networks and
replay need:

* observations stay a dict of arrays (a plain ``dict``, the suite's keys in
  its order, e.g. ``{"position": (3,), "velocity": (2,)}`` for cartpole);
  float64 leaves become float32, other dtypes are kept; every leaf is a new
  array each step;
* the action spec becomes a float32 ``BoundedArray`` whose bounds are the
  suite's rounded INWARDS (``distrl.specs.narrow_bounds``), so any action inside them is
  inside the suite's float64 bounds too; actions are converted back to
  float64 before they reach MuJoCo;
* rewards and discounts are float32 scalars (the suite's rewards lie in
  [0, 1] per control step).

Episodes end at the suite's time limit (1000 control steps for the
benchmark tasks) with LAST and discount 1, a truncation: the suite's
``control.Environment`` gives discount 1.0 when its step limit is reached,
and none of its benchmark tasks terminates earlier.

Options:

* ``action_repeat``: each action is applied this many control steps;
  rewards are summed, discounts multiplied, and the repeat stops at a LAST
  step (the 1000-step limit then allows ceil(1000 / action_repeat) agent steps).
* ``pixels``: the observation is ``{"pixels": uint8 [84, 84, 3]}`` (height,
  width, RGB), rendered from camera 0 with ``physics.render`` after the last
  repeated control step, instead of the state. Rendering needs an OpenGL
  backend: this module sets ``MUJOCO_GL=egl`` (unless it is already set)
  before it imports dm_control for a pixel task, since EGL works headless;
  GLFW needs a display and osmesa needs a working software GL.
* ``frame_stack`` (pixels only): the last N frames along a new leading axis,
  ``uint8 [N, 84, 84, 3]``, padded at the start of an episode by repeating
  the first frame. N = 1 (the default) adds no axis.

dm-control and mujoco are the optional ``dmc`` extra
(``pip install -e '.[dmc]'``); this module imports them only when an
environment is built.
"""

from __future__ import annotations

import collections
import difflib
import math
import os
from typing import Any

import dm_env
import numpy as np
from dm_env import specs

from distrl.specs import narrow_bounds
from distrl.types import Nest

INSTALL_HINT = "pip install -e '.[dmc]'"
PIXELS_SIZE = 84
PIXELS_CAMERA = 0

_REWARD_SPEC = specs.Array(shape=(), dtype=np.float32, name="reward")
_DISCOUNT_SPEC = specs.BoundedArray(
    shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount"
)


def _import_suite(what: str, pixels: bool) -> Any:
    """Imports ``dm_control.suite``, selecting EGL rendering for pixel tasks and on machines without a display.

    dm_control picks its renderer once, when first imported; without a
    display its default (GLFW) only warns and cannot render, so EGL is chosen
    there for every task (a later pixel task in the same process then works).

    Raises:
      ImportError: dm-control or mujoco is missing (the message names the extra).
    """
    if pixels or "DISPLAY" not in os.environ:
        os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from dm_control import suite
    except ImportError as error:
        if getattr(error, "name", None) in ("dm_control", "mujoco"):
            raise ImportError(f"{what} needs dm-control and mujoco: {INSTALL_HINT}") from error
        raise ImportError(
            f"{what}: importing dm_control failed ({error}); it needs dm-control and a "
            f"matching mujoco ({INSTALL_HINT}), and MUJOCO_GL "
            f"(now {os.environ.get('MUJOCO_GL')!r}) must name an OpenGL backend that loads"
        ) from error
    return suite


class DmControlEnvironment(dm_env.Environment):
    """A DeepMind Control Suite task with float32 observations, actions, rewards and discounts.

    Args:
      domain, task: a suite task, e.g. ``cartpole``, ``swingup`` (``suite.ALL_TASKS``).
      seed: the task's ``random`` seed (initial states of every episode); None: unseeded.
      action_repeat: control steps per agent step (>= 1); rewards summed.
      pixels: observe ``{"pixels": uint8 [84, 84, 3]}`` from camera 0 instead of the state.
      frame_stack: with pixels, stack the last N frames: ``uint8 [N, 84, 84, 3]`` (N > 1).

    Observations: a ``dict`` of float32 arrays (the suite's state keys and
    shapes; other dtypes kept), or of uint8 pixels. Actions: float32
    ``BoundedArray`` (bounds rounded inwards), in the suite's units
    (normalised actuator controls, usually [-1, 1]). Rewards: float32 in
    [0, action_repeat]. Discounts: float32, 1.0 (the suite's tasks do not
    terminate; the time limit is a truncation).

    Raises:
      ImportError: dm-control or mujoco is missing (the message names the ``dmc`` extra).
      ValueError: unknown domain or task, ``action_repeat`` or ``frame_stack``
        < 1, or ``frame_stack`` > 1 without pixels.
      RuntimeError: pixels were asked for and MuJoCo cannot render (the
        message names ``MUJOCO_GL``).
    """

    def __init__(
        self,
        domain: str,
        task: str,
        seed: int | None,
        *,
        action_repeat: int = 1,
        pixels: bool = False,
        frame_stack: int = 1,
    ):
        self._name = f"dmc:{domain}-{task}"
        if action_repeat < 1:
            raise ValueError(f"{self._name}: action_repeat must be >= 1, got {action_repeat}")
        if frame_stack < 1:
            raise ValueError(f"{self._name}: frame_stack must be >= 1, got {frame_stack}")
        if frame_stack > 1 and not pixels:
            raise ValueError(f"{self._name}: frame_stack needs pixels=true (it stacks frames)")
        suite = _import_suite(self._name, pixels)
        if (domain, task) not in suite.ALL_TASKS:
            known = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
            close = difflib.get_close_matches(f"{domain}-{task}", known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"tasks: {', '.join(known)}"
            raise ValueError(f"the DeepMind Control Suite has no task {domain}-{task} ({hint})")
        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        self._action_repeat = action_repeat
        self._pixels = pixels
        self._frame_stack = frame_stack
        self._frames: collections.deque = collections.deque(maxlen=frame_stack)

        suite_action = self._env.action_spec()
        low, high = narrow_bounds(suite_action.minimum, suite_action.maximum, np.float32)
        self._action_spec = specs.BoundedArray(
            shape=suite_action.shape, dtype=np.float32, minimum=low, maximum=high, name="action"
        )
        if pixels:
            shape = (PIXELS_SIZE, PIXELS_SIZE, 3)
            if frame_stack > 1:
                shape = (frame_stack, *shape)
            self._observation_spec = {
                "pixels": specs.BoundedArray(
                    shape=shape, dtype=np.uint8, minimum=0, maximum=255, name="pixels"
                )
            }
            try:
                self._render()  # Fail here, with a clear message, rather than at the first reset.
            except RuntimeError:
                self._env.close()
                raise
        else:
            self._leaves = [
                (key, np.float32 if np.dtype(spec.dtype) == np.float64 else np.dtype(spec.dtype))
                for key, spec in self._env.observation_spec().items()
            ]
            self._observation_spec = {
                key: specs.Array(shape=spec.shape, dtype=dtype, name=key)
                for (key, dtype), spec in zip(
                    self._leaves, self._env.observation_spec().values(), strict=True
                )
            }
        self._reset_next_step = True

    @property
    def name(self) -> str:
        """``dmc:<domain>-<task>``."""
        return self._name

    @property
    def reward_threshold(self) -> None:
        """None: the suite defines no solved-at return (episode returns lie in [0, 1000])."""
        return None

    @property
    def max_episode_steps(self) -> int | None:
        """Agent steps until the suite's time limit (ceil(limit / action_repeat)); None without one."""
        limit = getattr(self._env, "_step_limit", None)  # dm_control's control.Environment keeps it there.
        if limit is None or not math.isfinite(limit):
            return None
        return int(math.ceil(limit / self._action_repeat))

    def render(self, height: int = 240, width: int = 320, camera_id: int = 0) -> np.ndarray:
        """The scene from camera ``camera_id`` as uint8 [height, width, 3] (MuJoCo's renderer)."""
        return self._env.physics.render(height, width, camera_id=camera_id)

    @property
    def physics(self) -> Any:
        """The task's ``dm_control`` physics (for rendering or inspection)."""
        return self._env.physics

    @property
    def suite_environment(self) -> dm_env.Environment:
        """The wrapped ``dm_control.rl.control.Environment`` (float64 specs)."""
        return self._env

    def _render(self) -> np.ndarray:
        try:
            return self._env.physics.render(PIXELS_SIZE, PIXELS_SIZE, camera_id=PIXELS_CAMERA)
        except Exception as error:  # noqa: BLE001 - GL failures come as many types.
            from dm_control import _render

            raise RuntimeError(
                f"{self._name}?pixels=true: MuJoCo could not render with the OpenGL backend "
                f"{_render.BACKEND!r} (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): "
                f"{type(error).__name__}: {error}. On a machine without a display set "
                "MUJOCO_GL=egl before the process first imports dm_control (osmesa needs a "
                "working software OpenGL; glfw needs a display)."
            ) from error

    def _observe(self, observation: Any, first: bool) -> dict[str, np.ndarray]:
        if not self._pixels:
            return {key: np.array(observation[key], dtype=dtype) for key, dtype in self._leaves}
        frame = self._render()
        if self._frame_stack == 1:
            return {"pixels": frame}
        if first:
            self._frames.extend([frame] * self._frame_stack)
        else:
            self._frames.append(frame)
        return {"pixels": np.stack(self._frames)}

    def reset(self) -> dm_env.TimeStep:
        timestep = self._env.reset()
        self._reset_next_step = False
        return dm_env.TimeStep(
            dm_env.StepType.FIRST, None, None, self._observe(timestep.observation, first=True)
        )

    def step(self, action: Nest) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        action = np.asarray(action, dtype=np.float64)
        reward = 0.0
        discount = 1.0
        for _ in range(self._action_repeat):
            timestep = self._env.step(action)
            reward += timestep.reward
            discount *= timestep.discount
            if timestep.last():
                break
        observation = self._observe(timestep.observation, first=False)
        step_type = dm_env.StepType.MID
        if timestep.last():
            self._reset_next_step = True
            step_type = dm_env.StepType.LAST
        return dm_env.TimeStep(step_type, np.float32(reward), np.float32(discount), observation)

    def observation_spec(self) -> dict[str, specs.Array]:
        return self._observation_spec

    def action_spec(self) -> specs.BoundedArray:
        return self._action_spec

    def reward_spec(self) -> specs.Array:
        return _REWARD_SPEC

    def discount_spec(self) -> specs.BoundedArray:
        return _DISCOUNT_SPEC

    def close(self) -> None:
        self._env.close()
