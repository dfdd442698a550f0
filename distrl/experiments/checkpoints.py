"""A run's checkpoints: when they are due, what they hold, and finding the one to resume from.

A checkpoint is a sealed folder of ``RUN_DIR/checkpoints`` (``CheckpointStore``:
a manifest of sizes and hashes, the newest ``keep_checkpoints`` kept):

* ``learner.pt``: the learner's ``save()`` (networks, targets, optimisers,
  step count, torch RNG), read with ``torch.load(weights_only=True)``;
* ``replay.pt``: the replay table (items, keys, priorities, sampler and
  limiter state, RNG; ``Table.save``), when replay checkpoints are on;
* ``run.pt``: the run's own state (``state_files``): env steps, counters,
  the recorder's history, and in the single-process mode the acting side
  (policy, adders, environments' random generators, global RNGs).

``CheckpointSchedule`` says when a periodic one is due: every
``checkpoint_every_s`` seconds (the first after at most
``FIRST_CHECKPOINT_S``, so a short run that crashes still has one) and/or
every ``checkpoint_every_env_steps`` env steps.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from distrl.experiments.config import ExperimentConfig
from distrl.utils.checkpointing import CheckpointError, CheckpointStore, load_checkpoint

#: Folder of a run's checkpoints, inside its run directory.
CHECKPOINTS_DIR = "checkpoints"
#: The first time-based checkpoint comes after at most this many seconds.
FIRST_CHECKPOINT_S = 30.0
#: Replay checkpoints are on by default for tables of at most this many bytes (a larger table costs
#: as much disk and write time per checkpoint: turn them on with checkpoint_replay=True).
REPLAY_CHECKPOINT_MAX_BYTES = 2 << 30
LEARNER_FILE, REPLAY_FILE, RUN_FILE = "learner.pt", "replay.pt", "run.pt"


def checkpoint_store(config: ExperimentConfig, run_dir: str | Path) -> CheckpointStore:
    """The store of ``run_dir``'s checkpoints, keeping ``config.keep_checkpoints``."""
    return CheckpointStore(Path(run_dir) / CHECKPOINTS_DIR, keep_last=config.keep_checkpoints)


class CheckpointSchedule:
    """Whether a periodic checkpoint is due (see the module docstring)."""

    def __init__(self, config: ExperimentConfig, env_steps: int = 0) -> None:
        self._every_s = config.checkpoint_every_s
        self._every_env_steps = config.checkpoint_every_env_steps
        now = time.monotonic()
        self._next_time = None if self._every_s is None else now + min(self._every_s, FIRST_CHECKPOINT_S)
        self._next_env_steps = None if self._every_env_steps is None else env_steps + self._every_env_steps

    def due(self, env_steps: int) -> bool:
        """True when a period has passed since the last checkpoint (or the start)."""
        if self._next_time is not None and time.monotonic() >= self._next_time:
            return True
        return self._next_env_steps is not None and env_steps >= self._next_env_steps

    def done(self, env_steps: int) -> None:
        """Notes a checkpoint written at ``env_steps``; the next periods start now."""
        if self._every_s is not None:
            self._next_time = time.monotonic() + self._every_s
        if self._every_env_steps is not None:
            self._next_env_steps = env_steps + self._every_env_steps


def replay_checkpoint_enabled(config: ExperimentConfig, table_bytes: int) -> bool:
    """``config.checkpoint_replay`` when set, else on for tables up to ``REPLAY_CHECKPOINT_MAX_BYTES``
    (``table_bytes``: the table's full size, e.g. ``max_size`` times its bytes per item)."""
    if config.checkpoint_replay is not None:
        return bool(config.checkpoint_replay)
    return table_bytes <= REPLAY_CHECKPOINT_MAX_BYTES


def global_rng_state() -> dict[str, Any]:
    """numpy's and Python's global random states (torch's is in the learner's state)."""
    return {"numpy": np.random.get_state(), "python": random.getstate()}


def set_global_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state(tuple(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def resume_checkpoint(config: ExperimentConfig, run_dir: str | Path) -> tuple[Path, list[tuple[Path, str]]]:
    """The newest intact checkpoint of ``run_dir`` and the newer ones skipped, with why.

    Raises ``CheckpointError`` naming the folder when no checkpoint is intact
    (or there is none).
    """
    store = checkpoint_store(config, run_dir)
    folder, skipped = store.latest_intact()
    if folder is None:
        reasons = "; ".join(f"{path.name}: {why}" for path, why in skipped) or "there is none"
        raise CheckpointError(f"no intact checkpoint in {store.root} to resume from ({reasons})")
    return folder, skipped


def load_learner_state(folder: Path) -> dict[str, Any]:
    """``learner.pt`` of a checkpoint folder (``CheckpointError`` names a damaged one)."""
    return load_checkpoint(folder / LEARNER_FILE)


def report_skipped(skipped: list[tuple[Path, str]]) -> None:
    """Says which damaged checkpoints were passed over, and why (stderr, one line each)."""
    import sys

    for folder, why in skipped:
        print(f"distrl: skipped checkpoint {folder}: {why}", file=sys.stderr)
