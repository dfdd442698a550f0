"""Replay on Ray: the server actor hosting the tables (its client is ``distrl.replay.ray_client``).

``ReplayServer`` is a plain class; ``create_replay_server`` turns it into a
threaded Ray actor with three concurrency groups, each with its own threads:

* ``insert``: inserts, which may wait on the rate limiter until the learner
  has sampled enough;
* ``sample``: samples, which may wait until the actors have inserted enough;
* the default group: ``info``, ``can_sample``, ``update_priorities``,
  ``get_state`` / ``set_state``, which never wait on the limiter.

So a sample blocked on the limiter never holds a thread an insert needs (and
the reverse), and counters stay readable while both sides wait. Every wait
has a timeout (``Table``'s TimeoutError names the table and the limiter's
state), and every client-side wait on a remote call has a timeout a little
longer than the server's, so the server's clearer error arrives first.

The client side, with bounded and merged inserts, is ``RayReplayClient``
(``distrl.replay.ray_client``).

High-frequency methods (insert, sample, info, ...) run with Ray's task
events off: Ray otherwise keeps a record of every call in its GCS, which
grew by tens of MB per minute in long runs.

This module imports ray; the single-process mode never imports it.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import ray

from distrl.replay.rate_limiters import Queue
from distrl.replay.table import DEFAULT_TIMEOUT_S, Table
from distrl.types import Nest, SampleBatch

#: Extra seconds a client waits on a remote call beyond the server-side
#: timeout, so that the server's TimeoutError (which names the limiter state)
#: reaches the caller before the client's own, vaguer one.
CLIENT_TIMEOUT_MARGIN_S = 30.0

#: Threads of the server's default concurrency group (info, priorities, state).
CONTROL_CONCURRENCY = 8

#: Default cap on the items one merged insert call carries. ``distrl.bench
#: insert`` measured about 1 ms of fixed Ray cost per remote call on a small
#: machine: DQN's 16-transition batches then reach ~15k transitions/s, calls
#: of 128 ~146k/s and calls of 256 ~226k/s. 256 clears the 100k/s aim with
#: margin; a merged call of 256 DQN CartPole transitions is about 14 KB. The
#: server lowers it per table (``ReplayServer.coalescing_limit``): to 50 for
#: DQN's and DDPG's default ratio limiters, to 0 (no merging) for A2C's queue.
DEFAULT_MAX_COALESCED_ITEMS = 256


def replay_file_name(table: str, first: bool) -> str:
    """A table's file in a run checkpoint folder: ``replay.pt`` for the first table (as in the
    single-process mode), ``<table>.replay.pt`` for others."""
    return "replay.pt" if first else f"{table}.replay.pt"


class ReplayServer:
    """Hosts replay tables by name; the body of the replay server actor.

    Args:
      make_tables: Zero-argument callable returning the tables, e.g.
        ``functools.partial(builder.make_replay_tables, spec, seed)``. Tables
        hold locks and cannot be pickled, so they are built in the actor.
      checkpoint_root: the run's checkpoint store (``RUN_DIR/checkpoints``).
        When Ray restarts a crashed server, the new one restores its tables
        from the newest intact checkpoint holding them (or starts empty when
        there is none) and reports it (``restore_report``), so the actors and
        the learner carry on without the driver.
      restore_from: a checkpoint folder to load the tables from at the start
        (a resumed run).

    Raises ``CheckpointError`` (from ``restore_from``) naming a damaged file.
    """

    def __init__(
        self, make_tables: Callable[[], Sequence[Table]], checkpoint_root: str | None = None,
        restore_from: str | None = None,
    ) -> None:
        tables = list(make_tables())
        if not tables:
            raise ValueError("ReplayServer needs at least one table")
        names = [table.name for table in tables]
        if len(set(names)) != len(names):
            raise ValueError(f"ReplayServer: table names must be unique, got {names}")
        self._tables = {table.name: table for table in tables}
        self._first = names[0]
        self._report: dict[str, Any] = {"incarnation": uuid.uuid4().hex[:8], "restarted": was_restarted(),
                                         "restored_from": None, "restored_inserts": 0, "skipped": []}
        if restore_from is not None:
            self._restore(Path(restore_from))
        elif self._report["restarted"] and checkpoint_root is not None:
            from distrl.utils.checkpointing import CheckpointStore

            folder, skipped = CheckpointStore(checkpoint_root).latest_intact()
            self._report["skipped"] = [f"{path.name}: {why}" for path, why in skipped]
            if folder is not None and (folder / replay_file_name(self._first, True)).exists():
                self._restore(folder)

    def _restore(self, folder: Path) -> None:
        for name, table in self._tables.items():
            path = folder / replay_file_name(name, name == self._first)
            if path.exists():
                table.restore(path)
        self._report["restored_from"] = str(folder)
        self._report["restored_inserts"] = int(self._tables[self._first].info()["inserts"])

    def restore_report(self) -> dict[str, Any]:
        """This process's ``incarnation`` (new after each restart), whether Ray restarted it, the
        checkpoint it restored from (None: it started empty), the inserts the restored table had
        then, and the damaged checkpoints skipped."""
        return dict(self._report)

    @ray.method(enable_task_events=False)
    def poll(self, table: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(info(table), restore_report())`` in one call: the driver's poll, which tells a
        restarted server by its new ``incarnation``."""
        return self._table(table).info(), dict(self._report)

    def save_table(self, table: str, path: str) -> int:
        """Writes ``table`` to ``path`` (``Table.save``: a consistent snapshot; inserts and samples
        wait meanwhile); returns the file's size in bytes."""
        self._table(table).save(path)
        return Path(path).stat().st_size

    def table_nbytes(self, table: str) -> int:
        """Bytes ``table``'s storage holds (0 before its first insert)."""
        return self._table(table).nbytes

    def _table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"replay server has no table {name!r}; it has {sorted(self._tables)}") from None

    def table_names(self) -> list[str]:
        """Names of the hosted tables; the first feeds the learner."""
        return list(self._tables)

    def is_queue(self, table: str) -> bool:
        """True when ``table`` is a FIFO queue (each item sampled once, whole
        batches only), so a sampler must not ask for more than one batch."""
        return isinstance(self._table(table).rate_limiter, Queue)

    def coalescing_limit(self, table: str) -> int:
        """The most items a client may merge from several batches into one insert call.

        Merging keeps each call all-or-nothing, but a bigger call must not
        weaken what the table guarantees:

        * a queue: 0 (no merging). A queue admits whole calls only and is
          deadlock-free when producer call + consumer batch <= max_size + 1,
          which holds for one round (A2C sizes the queue so) but not for two;
        * a ratio limiter: a call of n items is admitted when its first item
          is, so it may overshoot the window by (n - 1) * samples_per_insert;
          n is capped at error_buffer / (2 * samples_per_insert), the insert
          batch ``SampleToInsertRatio.with_tolerance`` sizes the window for;
        * otherwise (``MinSize``: inserts never wait) the table's max_size.
        """
        t = self._table(table)
        limiter = t.rate_limiter
        if isinstance(limiter, Queue):
            return 0
        limit = t.max_size
        width = limiter.max_diff - limiter.min_diff  # 2 * error_buffer for SampleToInsertRatio.
        if limiter.samples_per_insert > 0 and math.isfinite(width):
            limit = min(limit, int(width / (4 * limiter.samples_per_insert)))
        return max(limit, 0)

    @ray.method(concurrency_group="insert", enable_task_events=False)
    def insert(
        self, table: str, items: Nest, priorities: np.ndarray | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> int:
        """Inserts a batch, waiting up to ``timeout`` seconds on the rate limiter;
        returns the number of items inserted."""
        keys = self._table(table).insert(items, priorities, timeout=timeout)
        return int(keys.shape[0])

    @ray.method(concurrency_group="sample", enable_task_events=False)
    def sample(self, table: str, batch_size: int, timeout: float = DEFAULT_TIMEOUT_S) -> SampleBatch:
        """Samples a batch, waiting up to ``timeout`` seconds on the rate limiter."""
        return self._table(table).sample(batch_size, timeout=timeout)

    @ray.method(enable_task_events=False)
    def can_sample(self, table: str, batch_size: int) -> bool:
        """True when a sample of ``batch_size`` would not wait now."""
        return self._table(table).can_sample(batch_size)

    def cancel_sample_waits(self, table: str) -> None:
        """Ends the sample calls now waiting on ``table``'s limiter: a restarted
        learner's predecessor left them, and no one would receive their data."""
        self._table(table).cancel_sample_waits()

    @ray.method(enable_task_events=False)
    def update_priorities(self, table: str, keys: np.ndarray, priorities: np.ndarray) -> None:
        """Sets priorities; keys of items already evicted are ignored."""
        self._table(table).update_priorities(keys, priorities)

    @ray.method(enable_task_events=False)
    def info(self, table: str | None = None) -> dict[str, Any]:
        """``Table.info()`` of one table, or ``{name: info}`` of all when ``table`` is None.

        Per table: size, inserts, samples, evictions, removals, observed
        ``samples_per_insert`` and ``insert_wait_s`` / ``sample_wait_s``
        (total seconds calls spent blocked on the rate limiter).
        """
        if table is not None:
            return self._table(table).info()
        return {name: t.info() for name, t in self._tables.items()}

    def get_state(self) -> dict[str, Any]:
        """``{name: Table.get_state()}`` for every table (for checkpoints)."""
        return {name: t.get_state() for name, t in self._tables.items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores ``get_state`` output; the table names must match."""
        if set(state) != set(self._tables):
            raise ValueError(f"replay state has tables {sorted(state)}, this server has {sorted(self._tables)}")
        for name, table_state in state.items():
            self._tables[name].set_state(table_state)


def was_restarted() -> bool:
    """True in an actor process Ray restarted after a crash."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Deprecated without a replacement yet.
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except AssertionError:  # Not an actor process.
        return False


def create_replay_server(
    make_tables: Callable[[], Sequence[Table]],
    insert_concurrency: int = 16,
    sample_concurrency: int = 8,
    name: str | None = None,
    max_restarts: int = 0,
    num_cpus: float = 0,
    checkpoint_root: str | None = None,
    restore_from: str | None = None,
) -> "ray.actor.ActorHandle":
    """Starts a ``ReplayServer`` actor and returns its handle.

    Args:
      make_tables: See ``ReplayServer``.
      insert_concurrency: Threads for inserts; at least the number of insert
        calls that can wait on the limiter at once (writers times their
        ``max_in_flight_inserts``), else later inserts queue behind them.
      sample_concurrency: Threads for samples (the learner's in-flight samples).
      name: Optional Ray actor name.
      max_restarts: Ray restarts after a crash (0: none); a restarted server
        restores from ``checkpoint_root`` when it can (``ReplayServer``).
      checkpoint_root, restore_from: See ``ReplayServer``.
      num_cpus: CPUs reserved for scheduling; 0 because the server mostly waits.
    """
    if insert_concurrency < 1 or sample_concurrency < 1:
        raise ValueError(
            f"insert_concurrency ({insert_concurrency}) and sample_concurrency ({sample_concurrency}) must be >= 1"
        )
    actor_class = ray.remote(
        concurrency_groups={"insert": int(insert_concurrency), "sample": int(sample_concurrency)}
    )(ReplayServer)
    options: dict[str, Any] = {
        "max_concurrency": CONTROL_CONCURRENCY,
        "max_restarts": max_restarts,
        "num_cpus": num_cpus,
    }
    if name is not None:
        options["name"] = name
    return actor_class.options(**options).remote(make_tables, checkpoint_root, restore_from)
