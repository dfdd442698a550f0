"""Insert-path capacity: writer actors inserting DQN transitions into one replay server.

W writer Ray actors (``--writers``, one run per count) each insert pre-built
batches of CartPole DQN transitions through a real ``RayReplayClient`` (with
the runtime's ``max_in_flight_inserts`` and the default insert coalescing:
once k calls are outstanding, batches merge into calls of up to
``DEFAULT_MAX_COALESCED_ITEMS``) into one ``ReplayServer`` for
``--seconds`` after a ``--warmup``. The batches are the real ``Transition``
nest the DQN adder writes (observation f32[4], action int64, reward and
discount f32, next_observation f32[4], extras {'policy_version': int64}),
made by the real ``NStepTransitionAdder`` on gymnasium's CartPole with
random actions. The table is shaped like DQN's (uniform sampler, DQN's
``max_replay_size``) but its rate limiter is ``MinSize``, so inserts never
wait on sampling and nothing samples: the figure is the insert path's
capacity, not what a learner-bound run sustains.

Reported per (writers, batch size):

* transitions/s into the server, counted by the server (the difference of
  ``info()["inserts"]`` at the start and end of the measured window), and
  insert calls/s (that divided by the writers' mean items per call, which
  merging raises above the batch size);
* the ratio to the same table's ``Table.insert`` rate in this process, with
  no Ray (same batch size, same batches, table full so FIFO eviction is
  included; median of short slices, measured in the same run);
* the writers' backpressure share (time blocked on ``max_in_flight_inserts``
  outstanding calls), and a check that every submitted item arrived.

Batch sizes default to the DQN adder's (``adder_batch_size``, what the
actors really send) and 256, to show how batch size drives capacity. At the
adder's batch size the same writer counts also run with coalescing off
(``max_coalesced_items=0``: one call per batch), the baseline coalescing is
measured against (``--no-baseline`` skips it); ``--max-coalesced-items``
sets the merge limit of the other rows (e.g. 50, what the server allows into
DQN's default ratio-limited table). The aim of the issue is at
least 100,000 transitions/s into the replay server.
``--profile`` adds a breakdown of one writer's per-call cost (coalescing
off, so a call is one batch): the same
items as one flat uint8 array (what the nest's many small leaves cost to
serialize), the flat array into a no-op server (Ray's fixed per-call
cost), and in-process microseconds of ``Table.insert`` and of Ray's
serialization of the call's payload.

Times are wall-clock; on a machine shared with other work the rates are
lower bounds.

One concept per module: ``workload`` (the DQN batches the writers send,
built in the driver), ``actors`` (the writer, the no-op server and the
table, what Ray's actor processes import: no torch, no gymnasium),
``measure`` (``run``: every row, the in-process rate, the per-call costs,
and ``check_options``, the rules for the options), ``report``
(``format_report``) and ``cli`` (``add_options``, ``options_from_args``,
``main``). The names this package exports are loaded from their modules
on first use (PEP 562), so importing ``distrl.bench.insert.actors`` in an
actor process does not import the driver's modules.

    python -m distrl.bench insert [--writers 1,2] [--batch-sizes 16,256] [--seconds 3]
        [--warmup 1] [--num-cpus N] [--max-coalesced-items 256] [--no-baseline] [--profile]
"""

from distrl.utils.lazy import lazy_attributes

#: Public names and the module of this package that defines each.
_NAMES = {
    "TABLE": "actors",
    "InsertWriter": "actors",
    "NoOpServer": "actors",
    "make_tables": "actors",
    "dqn_defaults": "workload",
    "flat_payloads": "workload",
    "make_batches": "workload",
    "AIM_TRANSITIONS_PER_S": "measure",
    "OptionError": "measure",
    "Row": "measure",
    "check_options": "measure",
    "in_process_rate": "measure",
    "micro_costs": "measure",
    "run": "measure",
    "run_one": "measure",
    "format_report": "report",
    "add_options": "cli",
    "main": "cli",
    "options_from_args": "cli",
}

__getattr__ = lazy_attributes(__name__, _NAMES)

__all__ = list(_NAMES)
