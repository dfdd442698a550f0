"""Command-line options the system benchmarks share: ``--distributed-set KEY=VALUE``."""

from __future__ import annotations

import argparse
from typing import Mapping, Sequence


def add_distributed_set(parser: argparse.ArgumentParser, example: str) -> None:
    """Adds the repeatable ``--distributed-set KEY=VALUE`` option (``args.distributed_overrides``)."""
    parser.add_argument("--distributed-set", dest="distributed_overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help=f"override a DistributedConfig field (repeatable), e.g. {example}")


def check_distributed_overrides(parser: argparse.ArgumentParser, overrides: Sequence[str],
                                owned: Mapping[str, str]) -> None:
    """Exits through ``parser.error`` (status 2) for an override of a field the benchmark sets
    itself (``owned``: field -> what sets it) or for an unknown field or bad value, before
    anything is measured."""
    from distrl.experiments.distributed.config import DistributedConfig
    from distrl.utils.config import apply_overrides

    for override in overrides:
        key = override.split("=", 1)[0].strip()
        if key in owned:
            parser.error(f"--distributed-set {override!r}: {key} is set by {owned[key]}")
    try:
        apply_overrides(DistributedConfig(), list(overrides), "DistributedConfig")
    except ValueError as error:
        parser.error(f"--distributed-set: {error}")
