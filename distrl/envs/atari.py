"""Atari 2600 games (the Arcade Learning Environment) with the standard DQN preprocessing.

``AtariEnvironment`` builds ``ALE/<game>-v5`` through gymnasium and ale-py
with the protocol of Machado et al. 2018 ("Revisiting the Arcade Learning
Environment: Evaluation Protocols and Open Problems for General Agents",
JAIR 61) and the preprocessing of the Nature DQN (Mnih et al. 2015,
"Human-level control through deep reinforcement learning"), using
gymnasium's own wrappers:

* ``AtariPreprocessing``: 4 emulator frames per agent step (frame skip 4),
  the pixel-wise max of the last two of them (removes sprite flicker), a
  uniformly random number (1 to 30) of no-op frames after every reset, 84x84
  grayscale (OpenCV ``INTER_AREA`` resize), uint8 pixels in [0, 255] (not
  scaled);
* ``FrameStackObservation``: the last 4 preprocessed frames, oldest first,
  padded at the start of an episode with copies of the first frame.

Observations are uint8 arrays ``[frame_stack, 84, 84]`` (channels first, for
PyTorch convolutions); actions are ``DiscreteArray(n)`` int64 indices into
the game's minimal action set (6 for Pong, 4 for Breakout) or, with
``full_action_space``, all 18 joystick/button combinations.

What the agent learns from differs from the game in two ways, both for
learning only; neither changes the game itself:

* **Rewards are sign-clipped** to {-1, 0, +1} (float32), as in the Nature
  DQN. The game score, the sum of the unclipped rewards since the last reset,
  is the ``episode_score`` attribute; ``EnvironmentLoop`` and
  ``VectorEnvironmentLoop`` report it as the episode return.
* **A life loss ends bootstrapping, not the episode**: the step on which
  ``info["lives"]`` drops is a MID step with discount 0, so n-step returns
  and GAE do not bootstrap across it, while the episode (and evaluation,
  which ignores discounts) plays on to game over. Machado et al. recommend
  against ending episodes at a life loss; this keeps the learning signal of
  the DQN-era "terminal on life loss" trick without changing the episodes.

Episodes end with a termination (LAST, discount 0) at game over, or with a
truncation (LAST, discount 1) after 108,000 emulator frames (30 minutes of
play at 60 Hz, 27,000 agent steps; ALE's ``max_num_frames_per_episode``).

Sticky actions (Machado et al.: with probability 0.25 the emulator repeats
the previous action instead of the new one, at every frame) are OFF by
default (``repeat_action_probability`` 0.0): the no-op starts are the source
of stochasticity, as in the Nature DQN and most published training curves.
Pass ``sticky_actions=True`` for Machado et al.'s recommended evaluation
protocol (0.25); results with and without are not comparable.

ale-py and OpenCV are the optional ``atari`` extra
(``pip install -e '.[atari]'``); this module imports them only when an
environment is built, and says which extra is missing when one is.
"""

from __future__ import annotations

import operator
from typing import Any

import dm_env
import gymnasium
import numpy as np
from dm_env import specs

from distrl.envs.gym_adapter import space_to_spec
from distrl.types import Nest

INSTALL_HINT = "pip install -e '.[atari]'"

#: Machado et al. 2018's recommended probability of repeating the previous action.
STICKY_ACTION_PROBABILITY = 0.25
#: 30 minutes at 60 frames per second (Machado et al. 2018; the Nature DQN's evaluation cap).
MAX_FRAMES_PER_EPISODE = 108_000
SCREEN_SIZE = 84
FRAME_SKIP = 4

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_REWARD_SPEC = specs.Array(shape=(), dtype=np.float32, name="reward")
_DISCOUNT_SPEC = specs.BoundedArray(
    shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount"
)


def import_ale(what: str) -> Any:
    """Imports ale-py and registers its ``ALE/...`` ids with gymnasium.

    Args:
      what: how the error message names what needs it (e.g. ``atari:Pong``).

    Returns:
      the ``ale_py`` module.

    Raises:
      ImportError: ale-py is not installed; the message names the ``atari`` extra.
    """
    try:
        import ale_py
    except ImportError as error:
        raise ImportError(f"{what} needs ale-py: {INSTALL_HINT}") from error
    gymnasium.register_envs(ale_py)
    return ale_py


def _require_opencv(what: str) -> None:
    """gymnasium's ``AtariPreprocessing`` resizes with OpenCV (cv2)."""
    try:
        import cv2  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{what} needs OpenCV (opencv-python-headless) for its 84x84 resize: {INSTALL_HINT}"
        ) from error


class AtariEnvironment(dm_env.Environment):
    """An Atari 2600 game with the DQN preprocessing, as a ``dm_env.Environment``.

    Args:
      game: the ALE game name as gymnasium registers it (``Pong``,
        ``Breakout``, ``SpaceInvaders``, ``MontezumaRevenge``, ...); the
        environment is ``ALE/<game>-v5``.
      seed: seeds the first reset (no-op starts, sticky actions, the emulator)
        and the action space; later resets continue the same random streams,
        so a whole run is a function of the seed. None: unseeded.
      sticky_actions: repeat the previous action with probability 0.25 at
        every emulator frame (Machado et al. 2018); default False (0.0).
      full_action_space: all 18 actions instead of the game's minimal set.
      noop_max: after every reset, a number of no-op actions drawn uniformly
        from 1..noop_max (one emulator frame each, as in OpenAI baselines'
        ``NoopResetEnv``); 0 disables them. Needs a game whose action 0 is NOOP.
      frame_stack: number of stacked frames (the observation's leading axis).
      max_num_frames_per_episode: the truncation cap in emulator frames
        (default 108,000; tests lower it).

    Observations: uint8 ``[frame_stack, 84, 84]``. Rewards: float32 in
    {-1, 0, 1} (sign-clipped); ``episode_score`` (a float) is the unclipped
    sum since the last reset. Discounts: float32, 0 at game over and on the
    step that loses a life, else 1 (also at the truncation).

    Raises:
      ImportError: ale-py or OpenCV is missing (the message names the extra).
      gymnasium.error.Error: gymnasium has no ``ALE/<game>-v5``.
      ValueError: ``noop_max`` < 0 or ``frame_stack`` < 1.
    """

    def __init__(
        self,
        game: str,
        seed: int | None,
        *,
        sticky_actions: bool = False,
        full_action_space: bool = False,
        noop_max: int = 30,
        frame_stack: int = 4,
        max_num_frames_per_episode: int = MAX_FRAMES_PER_EPISODE,
        render_mode: str | None = None,
    ):
        if noop_max < 0:
            raise ValueError(f"noop_max must be >= 0, got {noop_max}")
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        what = f"atari:{game}"
        import_ale(what)
        _require_opencv(what)
        self._repeat_action_probability = STICKY_ACTION_PROBABILITY if sticky_actions else 0.0
        env = gymnasium.make(
            f"ALE/{game}-v5",
            frameskip=1,  # AtariPreprocessing skips (and max-pools) the frames.
            repeat_action_probability=self._repeat_action_probability,
            full_action_space=full_action_space,
            max_num_frames_per_episode=max_num_frames_per_episode,
            render_mode=render_mode,
        )
        try:
            env = gymnasium.wrappers.AtariPreprocessing(
                env,
                noop_max=noop_max,
                frame_skip=FRAME_SKIP,
                screen_size=SCREEN_SIZE,
                terminal_on_life_loss=False,
                grayscale_obs=True,
                scale_obs=False,
            )
            env = gymnasium.wrappers.FrameStackObservation(env, stack_size=frame_stack)
            self._observation_spec = space_to_spec(env.observation_space, "observation")
            self._action_spec = space_to_spec(env.action_space, "action")
        except Exception:
            env.close()
            raise
        self._gym_env = env
        self._seed = seed
        if seed is not None:
            env.action_space.seed(seed)
        self._seed_on_next_reset = True
        self._reset_next_step = True
        self._lives = 0
        self._max_num_frames_per_episode = int(max_num_frames_per_episode)
        self.episode_score = 0.0

    @property
    def gym_env(self) -> gymnasium.Env:
        """The wrapped (preprocessed, frame-stacked) gymnasium environment."""
        return self._gym_env

    @property
    def name(self) -> str:
        """The gymnasium id, e.g. ``ALE/Pong-v5``."""
        return self._gym_env.spec.id

    @property
    def reward_threshold(self) -> None:
        """None: Atari games have no solved-at return."""
        return None

    def render(self) -> Any:
        """The emulator's current screen, uint8 [210, 160, 3], when made with ``render_mode='rgb_array'``."""
        return self._gym_env.render()

    @property
    def max_episode_steps(self) -> int:
        """The episode cap in agent steps: the frame cap over the frame skip (27,000 by default)."""
        return self._max_num_frames_per_episode // FRAME_SKIP

    @property
    def repeat_action_probability(self) -> float:
        """The sticky-action probability the emulator runs with (0.0 or 0.25)."""
        return self._repeat_action_probability

    @property
    def lives(self) -> int:
        """Lives left as of the last step (0 for games without lives, e.g. Pong)."""
        return self._lives

    def reset(self) -> dm_env.TimeStep:
        if self._seed_on_next_reset:
            observation, info = self._gym_env.reset(seed=self._seed)
            self._seed_on_next_reset = False
        else:
            observation, info = self._gym_env.reset()
        self._lives = info["lives"]
        self.episode_score = 0.0
        self._reset_next_step = False
        # FrameStackObservation returns a fresh (deep-copied) array every call.
        return dm_env.TimeStep(dm_env.StepType.FIRST, None, None, observation)

    def step(self, action: Nest) -> dm_env.TimeStep:
        if self._reset_next_step:
            return self.reset()
        observation, reward, terminated, truncated, info = self._gym_env.step(
            operator.index(action)
        )
        self.episode_score += float(reward)
        clipped = np.float32(np.sign(reward))
        if terminated:
            self._reset_next_step = True
            return dm_env.TimeStep(dm_env.StepType.LAST, clipped, _ZERO, observation)
        if truncated:
            self._reset_next_step = True
            return dm_env.TimeStep(dm_env.StepType.LAST, clipped, _ONE, observation)
        lives = info["lives"]
        if lives < self._lives:
            self._lives = lives
            return dm_env.TimeStep(dm_env.StepType.MID, clipped, _ZERO, observation)
        self._lives = lives
        return dm_env.TimeStep(dm_env.StepType.MID, clipped, _ONE, observation)

    def observation_spec(self) -> specs.BoundedArray:
        return self._observation_spec

    def action_spec(self) -> specs.DiscreteArray:
        return self._action_spec

    def reward_spec(self) -> specs.Array:
        return _REWARD_SPEC

    def discount_spec(self) -> specs.BoundedArray:
        return _DISCOUNT_SPEC

    def close(self) -> None:
        self._gym_env.close()
