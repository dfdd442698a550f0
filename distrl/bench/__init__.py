"""Benchmarks, run as ``python -m distrl.bench <name> [options]``.

Each benchmark is a module with a ``main(argv)`` that parses its own options
and prints a table; ``BENCHMARKS`` maps names to those modules so that new
ones (e.g. an end-to-end ``system`` benchmark) only add an entry.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Sequence

BENCHMARKS = {
    "actor": "distrl.bench.actor",
    "insert": "distrl.bench.insert",
    "learner": "distrl.bench.learner",
    "peers": "distrl.bench.peers",
    "replay": "distrl.bench.replay",
    "replay-atari": "distrl.bench.replay_atari",
    "soak": "distrl.bench.soak",
    "system": "distrl.bench.system",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark named by the first argument with the remaining options."""
    parser = argparse.ArgumentParser(
        prog="python -m distrl.bench",
        description="Run a distrl benchmark; options after the name go to it (see <name> --help).",
    )
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of the benchmark")
    args = parser.parse_args(argv)
    module = importlib.import_module(BENCHMARKS[args.benchmark])
    return module.main(args.options)
