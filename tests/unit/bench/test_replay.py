"""Unit tests for distrl.bench: the replay benchmark's measurements and report."""

from __future__ import annotations

from distrl.bench import replay


def test_replay_bench_rows_have_ratios_and_aims():
    rows = replay.run(size=2048, batch_size=64, seconds=0.02, rounds=2)
    by_name = {row.name: row for row in rows}
    assert set(replay.AIMS) <= set(by_name)
    assert by_name["numpy ring buffer insert"].ratio == 1.0
    assert by_name["prioritized update_priorities"].ratio is None
    for row in rows:
        assert row.rate > 0
        assert (row.met is None) == (row.name not in replay.AIMS)


def test_aims_are_judged_on_ratio_or_rate():
    ratio_aim, rate_aim = replay.Aim(min_ratio=0.5), replay.Aim(min_rate=100_000)
    assert ratio_aim.met(1.0, 0.5) and not ratio_aim.met(1e9, 0.49) and not ratio_aim.met(1e9, None)
    assert rate_aim.met(100_000, None) and not rate_aim.met(99_999, 10.0)
    assert (ratio_aim.describe(), rate_aim.describe()) == (">= 0.50x", ">= 100,000/s")


def test_replay_bench_report_marks_each_aim(capsys):
    assert replay.main(["--size", "2048", "--batch-size", "64", "--seconds", "0.02", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "x numpy buffer" in lines[1] and "aim" in lines[1]
    for name in replay.AIMS:
        (line,) = [line for line in lines if line.startswith(name)]
        assert line.endswith("PASS") or line.endswith("BELOW AIM")
    assert any(line.startswith("aims met: ") and line.endswith("/3") for line in lines)
