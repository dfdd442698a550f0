"""The command line: ``python -m distrl.bench insert [options]``.

``add_options`` and ``options_from_args`` are shared with the ``system``
benchmark, which takes the same options with an ``insert-`` prefix. Parsing
here only turns the text into numbers; the rules are ``check_options``, the
same ones ``run`` applies, turned into usage errors.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Sequence

from distrl.bench import insert
from distrl.bench.insert.measure import OptionError, check_options, run
from distrl.bench.insert.report import format_report


def _int_list(text: str, option: str, parser: argparse.ArgumentParser) -> list[int]:
    """Comma-separated integers (a usage error otherwise); empty parts are skipped."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"{option} must be comma-separated integers, got {text!r}")


def add_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The insert benchmark's options (``prefix`` namespaces them inside another benchmark)."""
    parser.add_argument(f"--{prefix}writers", default="1,2", help="comma-separated writer actor counts, one run each")
    parser.add_argument(f"--{prefix}batch-sizes", default=None,
                        help="comma-separated transitions per insert call (default: the DQN adder's and 256)")
    parser.add_argument(f"--{prefix}seconds", type=float, default=3.0, help="seconds measured per row")
    parser.add_argument(f"--{prefix}warmup", type=float, default=1.0, help="seconds of inserting before measuring")
    parser.add_argument(f"--{prefix}max-coalesced-items", type=int, default=None,
                        help="the writers' merge limit (default: RayReplayClient's, "
                             "DEFAULT_MAX_COALESCED_ITEMS)")
    parser.add_argument(f"--{prefix}no-baseline", action="store_true",
                        help="skip the coalescing-off rows (max_coalesced_items=0) at the DQN adder's batch size")
    parser.add_argument(f"--{prefix}profile", action="store_true",
                        help="add the per-call breakdown (flat payload, no-op server, in-process costs)")


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Any]:
    """Validates the options added by ``add_options`` and returns ``run``'s keyword arguments.

    Text that is not a list of integers, and anything ``check_options``
    rejects, is a usage error (``parser.error``: exit code 2) naming the
    option with its prefix. Defaults stay None (``run`` resolves them).
    """
    name = prefix.replace("-", "_")
    sizes_text = getattr(args, f"{name}batch_sizes")
    options = {
        "writer_counts": _int_list(getattr(args, f"{name}writers"), f"--{prefix}writers", parser),
        "batch_sizes": None if sizes_text is None else _int_list(sizes_text, f"--{prefix}batch-sizes", parser),
        "seconds": getattr(args, f"{name}seconds"),
        "warmup": getattr(args, f"{name}warmup"),
        "profile": getattr(args, f"{name}profile"),
        "max_coalesced_items": getattr(args, f"{name}max_coalesced_items"),
        "off_baseline": not getattr(args, f"{name}no_baseline"),
    }
    try:
        check_options(options["writer_counts"], options["batch_sizes"], options["seconds"], options["warmup"],
                      options["max_coalesced_items"])
    except OptionError as error:
        parser.error(f"--{prefix}{error.option} {error.problem}")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the options, runs the measurements and prints the table.

    Returns 0, or 1 when the server did not count every submitted item; bad
    options exit with a usage error (``SystemExit`` with code 2).
    """
    parser = argparse.ArgumentParser(prog="python -m distrl.bench insert",
                                     description=insert.__doc__.split("\n\n")[0])
    add_options(parser)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the private Ray instance (default: all)")
    args = parser.parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error("--num-cpus must be >= 1")
    start = time.perf_counter()
    options = options_from_args(args, parser)
    report = run(**options, num_cpus=args.num_cpus or os.cpu_count() or 1)
    print(format_report(report))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0 if report["lost"] == 0 else 1
