"""The system benchmark on a local Ray: one short row per profile, end to end (no timing assertions)."""

from __future__ import annotations

import pytest

from distrl.bench import system


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_two_profiles_one_actor_report_a_row_each(ray_session, capsys):
    argv = ["--actors", "1", "--profiles", "default,unthrottled", "--seconds", "3", "--no-insert",
            "--raw-seconds", "0.1", "--torch-seconds", "0.2", "--set", "hidden_sizes=16",
            "--set", "min_replay_size=200", "--distributed-set", "publish_period=5"]
    assert system.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("system throughput: dqn on gym:CartPole-v1"))
    rows = [line.split() for line in lines[header + 2:header + 4]]
    assert [row[:2] for row in rows] == [["default", "1"], ["unthrottled", "1"]]
    for row in rows:
        assert float(row[2].replace(",", "")) > 0 and row[4] == "1.00"  # One actor: efficiency 1 by definition.
    assert ray_session.is_initialized()  # The benchmark leaves a Ray it did not start running.
