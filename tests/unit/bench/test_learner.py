"""``python -m distrl.bench learner``: the learner on an in-process table against bare torch."""

from __future__ import annotations

import re

import pytest

from distrl.bench.learner import learner_updates_per_s, main

TINY = ["hidden_sizes=16", "target_update_period=10"]


def test_it_reports_each_batch_size_against_bare_torch(capsys):
    assert main(["--seconds", "0.2", "--batch-sizes", "8,16", "--table-size", "100",
                 *(arg for o in TINY for arg in ("--set", o))]) == 0
    out = capsys.readouterr().out
    assert "DQN on gym:CartPole-v1, CPU, 1 torch thread" in out
    rows = re.findall(r"^\| (\d+) \| ([\d,]+) \| ([\d,]+) \| (\d+\.\d\d) \|$", out, flags=re.M)
    assert [row[0] for row in rows] == ["8", "16"]
    for _, bare, learner, ratio in rows:
        bare, learner = (float(x.replace(",", "")) for x in (bare, learner))
        assert bare > 0 and learner > 0 and float(ratio) == pytest.approx(learner / bare, abs=0.01)


def test_the_learner_reads_an_image_table_through_the_prefetching_iterator():
    rate = learner_updates_per_s("distrl.envs.image_tasks:channels_first", ["batch_size=4", "min_replay_size=4"],
                                 seconds=0.2, device="cpu", table_size=50)
    assert rate > 0


@pytest.mark.parametrize("arguments, message", [
    (["--batch-sizes", "0"], "--batch-sizes must hold positive integers"),
    (["--batch-sizes", "a"], "--batch-sizes must be comma-separated integers"),
    (["--seconds", "0"], "--seconds must be > 0"),
    (["--batch-sizes", "64", "--table-size", "10"], "--table-size must be >= the largest batch size (64)"),
    (["--set", "batch_size=32"], "the batch sizes come from --batch-sizes"),
])
def test_wrong_options_are_refused_before_anything_runs(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_it_runs_where_ray_cannot_be_imported(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys; sys.modules['ray'] = None\n"  # any import of ray now raises ImportError
              "from distrl.bench import main\n"
              "sys.exit(main(['learner', '--seconds', '0.1', '--batch-sizes', '8', '--table-size', '50']))\n")
    repo_root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo_root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 8 |" in result.stdout
