"""The actor-efficiency benchmark on a local Ray: one short row, end to end (no timing assertions)."""

from __future__ import annotations

import pytest

from distrl.bench import actor


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_one_second_with_two_envs_reports_one_row(ray_session, capsys):
    assert actor.main(["--seconds", "1", "--envs-per-actor", "2", "--set", "hidden_sizes=16",
                       "--distributed-set", "min_insert_interval_s=0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("actor efficiency: dqn on gym:CartPole-v1"))
    row = lines[header + 2].split()
    assert row[0] == "2" and float(row[1].replace(",", "")) > 0 and float(row[2].replace(",", "")) > 0
    assert float(row[3]) > 0 and row[-1] in ("yes", "NO")
    assert ray_session.is_initialized()  # The benchmark leaves a Ray it did not start running.


@pytest.mark.parametrize("override, message", [
    ("num_actors=2", "set by this benchmark"),
    ("min_insert_interval_s=-1", "min_insert_interval_s"),
    ("no_such_field=1", "no_such_field"),
])
def test_a_bad_distributed_override_is_refused_before_measuring(override, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        actor.main(["--distributed-set", override])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
