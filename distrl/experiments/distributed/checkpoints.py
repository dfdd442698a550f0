"""The distributed runtime's checkpoints: the driver seals what the learner and the replay server write.

A checkpoint of a Ray run is a ``CheckpointStore`` folder like the
single-process mode's (``distrl.experiments.checkpoints``), filled by three
processes: the learner writes ``learner.pt`` between two of its steps
(``LearnerWorker.checkpoint``), the replay server writes ``replay.pt``
from its live arrays under the table's lock (``ReplayServer.save_table``:
inserts and samples wait meanwhile), and the driver writes ``run.pt`` (env
steps, the recorder's history, where the next evaluation is) and commits
the manifest. The three parts are taken moments apart while acting goes on,
so a resumed distributed run continues the run (weights, replay, counters,
history) but does not repeat it exactly, as timing already makes
distributed runs differ (``run.pt`` says ``exact: False``). On a cluster of
several machines the run directory must be on storage every node sees.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ray

from distrl.experiments.checkpoints import LEARNER_FILE, REPLAY_FILE, RUN_FILE, replay_checkpoint_enabled
from distrl.experiments.config import ExperimentConfig
from distrl.utils.checkpointing import CheckpointStore
from distrl.utils.state_files import save_state


def write_checkpoint(
    config: ExperimentConfig, store: CheckpointStore, learner: Any, server: Any, table: str, env_steps: int,
    run_state: dict[str, Any], timeout_s: float,
) -> Path | None:
    """Writes and seals the checkpoint of ``env_steps``; returns its folder, or None (reported on
    stderr) when a part could not be written in ``timeout_s`` or the disk refused it.

    ``learner`` and ``server`` are the actor handles; ``run_state`` is the
    driver's part. Raises ``NonFiniteLossError`` (the learner refuses to
    save weights a non-finite loss corrupted).
    """
    staging = store.begin(env_steps)
    try:
        learned = ray.get(learner.checkpoint.remote(str(staging / LEARNER_FILE), timeout_s), timeout=timeout_s + 30)
        table_bytes = ray.get(server.table_nbytes.remote(table), timeout=timeout_s)
        with_replay = replay_checkpoint_enabled(config, table_bytes)
        if with_replay:
            ray.get(server.save_table.remote(table, str(staging / REPLAY_FILE)), timeout=timeout_s)
        save_state(staging / RUN_FILE, {**run_state, "exact": False})
        return store.commit(staging, env_steps, {
            "env_steps": env_steps, "learner_steps": int(learned["steps"]), "replay": with_replay, "exact": False,
        })
    except (OSError, TimeoutError, ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError) as error:
        print(f"distrl: checkpoint at env step {env_steps} failed: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    except ray.exceptions.RayTaskError as error:
        cause = error.as_instanceof_cause()
        if isinstance(cause, (OSError, TimeoutError)):
            print(f"distrl: checkpoint at env step {env_steps} failed: {cause}", file=sys.stderr)
            return None
        raise cause from None
