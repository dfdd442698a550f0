"""Episodes recorded as mp4 files, from any environment that renders frames.

``VideoRecorder`` wraps a ``dm_env.Environment`` whose ``render()`` returns
an RGB frame (uint8 [H, W, 3]): gymnasium and ALE environments made with
``render_mode='rgb_array'``, the GridWorld and dm_control tasks. It keeps
the frames of the current episode (bounded by ``max_frames``) and writes
``episode-<i>.mp4`` with imageio's ffmpeg plugin when the episode ends (or,
for an episode cut short, when the next one starts or the environment is
closed). gymnasium's ``RecordVideo`` does the same for gymnasium envs only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dm_env
import numpy as np

from distrl.envs.wrappers import EnvironmentWrapper

#: Install hint when imageio or its ffmpeg plugin is missing.
VIDEO_INSTALL_HINT = "pip install -e '.[video]'"


class VideoRecorder(EnvironmentWrapper):
    """Writes every episode of ``environment`` to ``directory/episode-<i>.mp4``.

    Args:
      environment: renders uint8 RGB frames with ``render()``.
      directory: created if missing.
      fps: frames per second of the files.
      max_frames: frames kept per episode at most (the first ones; memory stays bounded).
    Raises:
      ImportError: imageio or imageio-ffmpeg is missing (the message says how to install them).
      ValueError: ``render()`` gives no uint8 RGB frame.
    """

    def __init__(self, environment: dm_env.Environment, directory: str | Path, fps: int = 30,
                 max_frames: int = 27_000) -> None:
        super().__init__(environment)
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401 - imageio's mp4 writer needs it.
        except ImportError as error:
            raise ImportError(f"recording videos needs imageio and imageio-ffmpeg: {VIDEO_INSTALL_HINT}") from error
        self._imageio = imageio
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._fps, self._max_frames = int(fps), int(max_frames)
        self._frames: list[np.ndarray] = []
        self.paths: list[Path] = []

    def _capture(self) -> None:
        if len(self._frames) >= self._max_frames:
            return
        frame = self._environment.render()
        array = np.asarray(frame) if frame is not None else None
        if array is None or array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(
                f"cannot record a video: render() gave {None if array is None else (array.shape, array.dtype)}, "
                "not a uint8 RGB frame (gymnasium and ALE environments must be made with render_mode='rgb_array')"
            )
        # libx264 needs even sides: pad one row / column by repeating the edge.
        pad = ((0, array.shape[0] % 2), (0, array.shape[1] % 2), (0, 0))
        self._frames.append(np.pad(array, pad, mode="edge") if any(p[1] for p in pad[:2]) else array)

    def _write(self) -> None:
        if not self._frames:
            return
        path = self._directory / f"episode-{len(self.paths)}.mp4"
        self._imageio.mimsave(path, self._frames, fps=self._fps, macro_block_size=1)
        self.paths.append(path)
        self._frames = []

    def reset(self) -> dm_env.TimeStep:
        self._write()
        timestep = self._environment.reset()
        self._capture()
        return timestep

    def step(self, action: Any) -> dm_env.TimeStep:
        timestep = self._environment.step(action)
        if timestep.first():
            self._write()
        self._capture()
        if timestep.last():
            self._write()
        return timestep

    def close(self) -> None:
        self._write()
        self._environment.close()
