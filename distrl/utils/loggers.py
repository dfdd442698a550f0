"""Metric loggers: CSV (tidy rows), TensorBoard (when installed) and a fan-out.

Metric names are stable across agents and modes (CleanRL's convention):
``charts/episodic_return``, ``charts/episodic_length``, ``charts/SPS``,
``losses/td_loss``, ``eval/episodic_return``... Every row is keyed by the
environment-step count so runs can be compared on the same axis.
"""

from __future__ import annotations

import abc
import collections
import csv
import os
import threading
import time
from pathlib import Path
from typing import Mapping

CSV_COLUMNS = ("wall_clock_s", "env_steps", "metric", "value")


class Logger(abc.ABC):
    """Receives scalar metrics at a given environment step."""

    @abc.abstractmethod
    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        """Records ``metrics`` (name -> scalar) at ``env_steps``."""

    def close(self) -> None:
        """Flushes and releases resources."""


class CSVLogger(Logger):
    """Appends tidy rows ``wall_clock_s, env_steps, metric, value`` to a CSV file.

    The tidy layout keeps one schema however many metrics an agent reports,
    so files from different agents and modes concatenate and plot the same way.
    """

    def __init__(self, path: str | os.PathLike, flush_every_s: float = 5.0, truncate_to: int | None = None,
                 start_offset_s: float = 0.0) -> None:
        """``truncate_to`` (bytes) first cuts an existing file back (a resumed run drops the rows
        written after its checkpoint); ``start_offset_s`` continues its ``wall_clock_s``."""
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_to is not None and self._path.exists():
            with open(self._path, "r+b") as f:
                f.truncate(truncate_to)
        new_file = not self._path.exists() or self._path.stat().st_size == 0
        self._file = open(self._path, "a", newline="")
        self._writer = csv.writer(self._file)
        if new_file:
            self._writer.writerow(CSV_COLUMNS)
        self._start = time.perf_counter() - start_offset_s
        self._flush_every_s = flush_every_s
        self._last_flush = self._start
        self._lock = threading.Lock()

    def restart_clock(self, offset_s: float = 0.0) -> None:
        """Counts ``wall_clock_s`` from now (plus ``offset_s``, a resumed run's time so far)."""
        self._start = time.perf_counter() - offset_s

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        now = time.perf_counter()
        elapsed = round(now - self._start, 3)
        with self._lock:
            for name, value in metrics.items():
                self._writer.writerow((elapsed, int(env_steps), name, float(value)))
            if now - self._last_flush > self._flush_every_s:
                self._file.flush()
                self._last_flush = now

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def flush(self) -> int:
        """Writes the buffered rows to the file; returns its size in bytes (a checkpoint's offset)."""
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            return self._file.tell()


class TensorBoardLogger(Logger):
    """Writes scalars with ``torch.utils.tensorboard`` (needs the ``tensorboard`` package)."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, float(value), int(env_steps))

    def close(self) -> None:
        self._writer.close()


class WandbLogger(Logger):
    """Sends scalars to Weights & Biases (needs the ``wandb`` package: ``pip install -e '.[wandb]'``).

    Every metric is plotted against ``env_steps`` (``wandb.define_metric``),
    the axis of ``metrics.csv``; rows are logged as they come, so rows of
    several components (actors, learner) need not arrive in step order. The
    run's files go under ``directory``; ``mode`` is wandb's (``online``,
    ``offline``, ``disabled``; None: wandb's default, which ``WANDB_MODE``
    sets). Raises ImportError naming the extra when wandb is missing.
    """

    def __init__(self, project: str, name: str, directory: str | os.PathLike, config: Mapping,
                 mode: str | None = None) -> None:
        try:
            import wandb
        except ImportError as error:
            raise ImportError("the wandb logger needs wandb: pip install -e '.[wandb]'") from error
        self._run = wandb.init(project=project, name=name, dir=str(directory), config=dict(config), mode=mode,
                               reinit="create_new")
        self._run.define_metric("env_steps")
        self._run.define_metric("*", step_metric="env_steps")

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        self._run.log({**{name: float(value) for name, value in metrics.items()}, "env_steps": int(env_steps)})

    def close(self) -> None:
        self._run.finish()


class MultiLogger(Logger):
    """Forwards every write to several loggers."""

    def __init__(self, loggers: list[Logger]) -> None:
        self._loggers = loggers

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        for logger in self._loggers:
            logger.write(metrics, env_steps)

    def close(self) -> None:
        for logger in self._loggers:
            logger.close()


class NullLogger(Logger):
    """Discards everything (tests, evaluation probes)."""

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        pass


class BufferLogger(Logger):
    """Keeps the last ``max_rows`` rows in memory until ``drain`` collects them.

    A worker process (a Ray learner) cannot write the driver's files: it logs
    here and the driver drains the rows with each poll, so memory stays
    bounded even when nobody polls for a while (the oldest rows go first).
    """

    def __init__(self, max_rows: int = 10_000) -> None:
        self._rows: collections.deque[tuple[dict[str, float], int]] = collections.deque(maxlen=max_rows)

    def write(self, metrics: Mapping[str, float], env_steps: int) -> None:
        self._rows.append(({k: float(v) for k, v in metrics.items()}, int(env_steps)))

    def drain(self) -> list[tuple[dict[str, float], int]]:
        """Returns and forgets the rows written since the last call, oldest first."""
        rows = []
        while self._rows:
            rows.append(self._rows.popleft())
        return rows


def tensorboard_available() -> bool:
    """True when the optional ``tensorboard`` package can be imported."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
