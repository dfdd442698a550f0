"""The insert-path benchmark on a local Ray: report structure, no item lost (no timing assertions)."""

from __future__ import annotations

import pytest

from distrl.bench import insert, system
from distrl.replay.server import DEFAULT_MAX_COALESCED_ITEMS


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_tiny_run_reports_every_row_and_loses_no_item(ray_session):
    report = insert.run(writer_counts=(1, 2), batch_sizes=(16, 32), seconds=0.3, warmup=0.1,
                        baseline_seconds=0.05, profile=True)
    assert report["aim_transitions_per_s"] == 100_000
    assert report["runtime_batch_size"] == 16 and report["max_in_flight_inserts"] >= 1
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
