"""The insert-path benchmark's pieces that need no Ray: real DQN batches, options, light actor imports."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from distrl.bench import BENCHMARKS, insert, system
from distrl.types import Transition


def test_registered():
    assert BENCHMARKS["insert"] == "distrl.bench.insert"


def test_batches_are_the_dqn_adders_transition_nest():
    batches = insert.make_batches(16, num_batches=2)
    assert len(batches) == 2
    batch = batches[0]
    assert type(batch) is Transition
    assert batch.observation.shape == (16, 4) and batch.observation.dtype == np.float32
    assert batch.next_observation.shape == (16, 4) and batch.next_observation.dtype == np.float32
    assert batch.action.shape == (16,) and batch.action.dtype == np.int64
    assert batch.reward.dtype == np.float32 and batch.discount.dtype == np.float32
    assert set(batch.extras) == {"policy_version"} and batch.extras["policy_version"].dtype == np.int64
    flat = insert.flat_payloads(batches)[0]
    assert flat.shape == (16, 56) and flat.dtype == np.uint8  # 4*4 + 8 + 4 + 4 + 4*4 + 8 bytes per item.


@pytest.mark.parametrize("argv", [["--writers", "0"], ["--writers", ","], ["--batch-sizes", "a"],
                                  ["--batch-sizes", "100001"], ["--seconds", "0"], ["--warmup", "-1"],
                                  ["--max-coalesced-items", "0"], ["--num-cpus", "0"]])
def test_bad_options_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as error:
        insert.main(argv)
    assert error.value.code == 2
    assert argv[0] in capsys.readouterr().err  # The message names the option.


def test_coalescing_options():
    parser = argparse.ArgumentParser()
    insert.add_options(parser)
    options = insert.options_from_args(parser.parse_args([]), parser)
    assert options["off_baseline"] is True and options["max_coalesced_items"] is None
    options = insert.options_from_args(parser.parse_args(["--no-baseline", "--max-coalesced-items", "50"]), parser)
    assert options["off_baseline"] is False and options["max_coalesced_items"] == 50


@pytest.mark.parametrize("kwargs, option", [
    ({"writer_counts": ()}, "writers"),
    ({"writer_counts": (1, 0)}, "writers"),
    ({"batch_sizes": (0,)}, "batch-sizes"),
    ({"seconds": 0.0}, "seconds"),
    ({"warmup": -0.5}, "warmup"),
    ({"max_coalesced_items": 0}, "max-coalesced-items"),
])
def test_run_rejects_bad_arguments_before_starting_ray(kwargs, option):
    with pytest.raises(ValueError) as error:  # OptionError is a ValueError.
        insert.run(**kwargs)
    assert isinstance(error.value, insert.OptionError) and error.value.option == option


@pytest.mark.parametrize("argv", [["--insert-writers", "x"], ["--insert-writers", "0"], ["--insert-seconds", "0"]])
def test_system_rejects_bad_insert_options_before_running(argv, capsys):
    with pytest.raises(SystemExit) as error:
        system.main(argv)
    assert error.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_actor_module_imports_neither_torch_nor_gymnasium():
    """Ray imports ``actors`` in every writer and server process; the driver's imports stay out."""
    code = ("import sys, distrl.bench.insert.actors; "
            "print(sorted(m for m in ('torch', 'gymnasium') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
