"""The insert-path benchmark: real DQN batches, report structure, no item lost (no timing assertions)."""

from __future__ import annotations

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


@pytest.mark.parametrize("argv", [["--writers", "0"], ["--batch-sizes", "a"], ["--seconds", "0"],
                                  ["--max-coalesced-items", "0"]])
def test_bad_options_exit_with_usage_error(argv):
    with pytest.raises(SystemExit) as error:
        insert.main(argv)
    assert error.value.code == 2


def test_coalescing_options():
    import argparse

    parser = argparse.ArgumentParser()
    insert.add_options(parser)
    options = insert.options_from_args(parser.parse_args([]), parser)
    assert options["off_baseline"] is True and options["max_coalesced_items"] is None
    options = insert.options_from_args(parser.parse_args(["--no-baseline", "--max-coalesced-items", "50"]), parser)
    assert options["off_baseline"] is False and options["max_coalesced_items"] == 50


def test_system_rejects_bad_insert_options_before_running():
    with pytest.raises(SystemExit) as error:
        system.main(["--insert-writers", "x"])
    assert error.value.code == 2


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_tiny_run_reports_every_row_and_loses_no_item(ray_session):
    report = insert.run(writer_counts=(1, 2), batch_sizes=(16, 32), seconds=0.3, warmup=0.1,
                        baseline_seconds=0.05, profile=True)
    assert report["aim_transitions_per_s"] == 100_000
    assert report["runtime_batch_size"] == 16 and report["max_in_flight_inserts"] >= 1
    from distrl.replay.server import DEFAULT_MAX_COALESCED_ITEMS

    merge = report["max_coalesced_items"]
    assert merge == DEFAULT_MAX_COALESCED_ITEMS
    assert report["table"]["rate_limiter"].startswith("MinSize(")
    assert set(report["in_process"]) == {16, 32} and min(report["in_process"].values()) > 0
    # The default client at each writer count, then the coalescing-off baseline at the adder's batch only.
    assert [(row["writers"], row["batch_size"], row["max_coalesced_items"]) for row in report["rows"]] == [
        (1, 16, merge), (2, 16, merge), (1, 16, 0), (2, 16, 0), (1, 32, merge), (2, 32, merge)]
    profile_rows = report["profile"]["rows"]
    assert [(row["batch_size"], row["payload"], row["server"]) for row in profile_rows] == [
        (b, payload, server) for b in (16, 32)
        for payload, server in (("transition", "replay"), ("flat", "replay"), ("flat", "no-op"))]
    assert all(row["max_coalesced_items"] == 0 for row in profile_rows)  # Per-call costs: one batch per call.
    for row in report["rows"] + profile_rows:
        assert row["submitted"] > 0
        assert row["server_inserts"] == row["submitted"] and row["lost"] == 0
        assert row["transitions_per_s"] > 0
        assert row["calls_per_s"] == pytest.approx(row["transitions_per_s"] / row["items_per_call"])
        if row["max_coalesced_items"]:
            assert row["batch_size"] <= row["items_per_call"] <= row["max_coalesced_items"]
        else:
            assert row["items_per_call"] == row["batch_size"]
        assert 0.0 <= row["backpressure_fraction"] <= 1.0
    assert report["lost"] == 0
    assert set(report["profile"]["micro_us"][16]) >= {"table_insert_us", "pickle_dumps_us"}
    text = insert.format_report(report)
    assert "aim (>= 100,000 transitions/s into the replay server)" in text
    assert "never wait on sampling" in text
    assert "Ray's fixed per-call cost" in text
    assert f"max_coalesced_items={merge}" in text and "coalescing off: best" in text
    assert "insert-path headroom" in system.insert_headroom(
        report, [system.Row(1, 500.0, [500.0], 250.0, 0.0, 0.5, "learner")])
