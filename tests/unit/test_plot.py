"""distrl plot: seed bands, grid alignment, the PNG, the summary table and the CLI's errors.

Run directories are built by hand (config.json, metrics.csv, summary.json): no training here.
"""

from __future__ import annotations

import argparse
import csv
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distrl import plot

EVAL = "eval/episodic_return"
CHARTS = "charts/episodic_return"


def make_run(root: Path, agent: str, env: str, seed: int, evals, episodes=(), summary: bool = True) -> Path:
    """A run directory with eval rows ``(env_steps, value)`` (wall clock = steps / 1000 s)
    and ``charts/episodic_return`` rows ``(env_steps, value)``."""
    run = root / f"{env.replace(':', '_')}__{agent}__{seed}__{1700000000 + seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"agent": agent, "env": env, "seed": seed, "max_env_steps": 4000,
                                                 "agent_config": {}}))
    rows = [(steps / 1000, steps, CHARTS, value) for steps, value in episodes]
    rows += [(steps / 1000, steps, EVAL, value) for steps, value in evals]
    rows += [(steps / 1000, steps, "eval/episodic_return_std", 1.0) for steps, _ in evals]
    rows.sort(key=lambda row: row[1])
    with open(run / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wall_clock_s", "env_steps", "metric", "value"])
        writer.writerows(rows)
    if summary:
        final = evals[-1][1] if evals else None
        (run / "summary.json").write_text(json.dumps({
            "status": "completed", "agent": agent, "env": env, "seed": seed, "mode": "debug",
            "env_steps": 4000, "learner_steps": 100, "wall_clock_s": 4.0, "final_eval_return": final,
            "best_eval_return": max(v for _, v in evals) if evals else None, "solved_at_env_steps": None,
            "solved_at_wall_clock_s": None, "evaluations": [],
        }))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Three DQN seeds on CartPole (evaluations a few steps apart, as real ones land) and one A2C run."""
    root = tmp_path / "runs"
    for seed, (offset, scale) in enumerate([(0, 1.0), (7, 2.0), (15, 3.0)]):
        evals = [(k * 1000 + offset, scale * 10 * k) for k in range(1, 5)]
        episodes = [(s + offset, scale * s / 100) for s in range(50, 4000, 97 + seed)]
        make_run(root, "dqn", "gym:CartPole-v1", seed, evals, episodes)
    make_run(root, "a2c", "gym:CartPole-v1", 0, [(k * 1000 + 3, 100.0 * k) for k in range(1, 5)],
             [(s, s / 10) for s in range(30, 4000, 50)])
    return root


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# --- pure functions -----------------------------------------------------------------------------


def test_seed_band_mean_is_exact_and_ci_contains_it():
    curves = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 6.0, 9.0]])
    mean, low, high = plot.seed_band(curves)
    np.testing.assert_allclose(mean, [3.0, 4.0, 17.0 / 3.0])
    assert np.all(low <= mean) and np.all(mean <= high)
    assert np.all(low >= curves.min(axis=0)) and np.all(high <= curves.max(axis=0))
    assert np.all(high - low > 0)
    again = plot.seed_band(curves)  # fixed bootstrap seed: the same band every time
    np.testing.assert_array_equal(again[1], low)
    np.testing.assert_array_equal(again[2], high)


def test_seed_band_two_seeds_by_hand():
    # Resampling 2 seeds: means 0 (p 1/4), 5 (1/2), 10 (1/4): the 2.5% / 97.5% quantiles are 0 and 10.
    mean, low, high = plot.seed_band(np.array([[0.0], [10.0]]))
    assert (mean[0], low[0], high[0]) == (5.0, 0.0, 10.0)


def test_seed_band_identical_seeds_and_single_seed_have_no_width():
    same = np.tile([0.1, 7.3, 500.0], (4, 1))
    mean, low, high = plot.seed_band(same)
    np.testing.assert_allclose(mean, same[0])
    np.testing.assert_allclose(high - low, 0.0, atol=1e-9)
    mean, low, high = plot.seed_band(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)


def test_seed_band_step_interpolates_onto_a_grid():
    curves = [([0.0, 10.0], [1.0, 2.0]), ([0.0, 5.0], [3.0, 4.0])]
    mean, _, _ = plot.seed_band(curves, np.array([0.0, 5.0, 10.0]))
    np.testing.assert_allclose(mean, [2.0, 2.5, 3.0])  # seed 0: 1, 1, 2; seed 1: 3, 4, 4


def test_align_seeds_averages_evaluations_point_by_point():
    curves = [([1019, 2016, 3005], [1.019, 2.016, 3.005], [10, 20, 30]),
              ([1000, 2030, 3010, 4001], [1.0, 2.03, 3.01, 4.001], [12, 22, 32, 42])]  # the second runs longer
    grid, values = plot.align_seeds(curves)
    np.testing.assert_allclose(grid, [1.0095, 2.023, 3.0075])  # mean x (here wall clock) of each evaluation
    np.testing.assert_array_equal(values, [[10, 20, 30], [12, 22, 32]])


def test_align_seeds_step_interpolates_unaligned_points():
    curves = [([0, 10, 20], [0, 10, 20], [1, 2, 3]), ([5, 25], [5, 25], [7, 8])]
    grid, values = plot.align_seeds(curves)
    np.testing.assert_array_equal(grid, [5, 10, 20])  # the union within [latest start, earliest end]
    np.testing.assert_array_equal(values, [[1, 2, 3], [7, 7, 7]])


def test_rolling_mean_and_default_smoothing():
    assert plot.rolling_mean([1, 2, 3, 4, 5], 2) == [1, 1.5, 2.5, 3.5, 4.5]
    assert plot.rolling_mean([1, 2, 3], 1) == [1, 2, 3]
    assert plot.default_smooth(EVAL) == 1 and plot.default_smooth(CHARTS) == 10
    assert plot.default_smooth("losses/td_loss") == 1


def test_importing_the_module_loads_no_matplotlib_or_numpy():
    code = "import sys, distrl.plot; print(sorted(m for m in ('matplotlib', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- plots ----------------------------------------------------------------------------------------


def test_plot_of_two_groups_writes_a_png(runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    out = plot.plot_runs([runs], out=tmp_path / "new" / "folder" / "eval.png", title="test")
    assert out == tmp_path / "new" / "folder" / "eval.png"
    assert 10_000 < out.stat().st_size < 1_000_000
    width, height = png_size(out)
    assert 600 <= width <= 2000 and 400 <= height <= 1500


def test_cli_x_wall_clock_and_smoothed_charts(runs: Path, tmp_path: Path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "wall.png"
    assert plot.main([str(runs), "--x", "wall_clock_s", "--out", str(out), "--no-table"]) == 0
    assert png_size(out)[0] > 0
    out = tmp_path / "charts.png"
    assert plot.main([str(runs), "--metric", CHARTS, "--smooth", "5", "--out", str(out), "--no-table"]) == 0
    assert out.stat().st_size > 10_000
    assert plot.main([str(runs), "--metric", CHARTS, "--out", str(out), "--no-table"]) == 0  # default smoothing
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "agent" not in captured.out  # --no-table: no table
    assert captured.err == ""


def test_run_dirs_can_be_given_one_by_one(runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    dqn = sorted(runs.glob("*__dqn__*"))
    assert plot.main([*map(str, dqn), "--out", str(tmp_path / "dqn.png"), "--no-table"]) == 0
    assert (tmp_path / "dqn.png").is_file()


def test_unknown_metric_exits_2_naming_the_metrics(runs: Path, tmp_path: Path, capsys):
    assert plot.main([str(runs), "--metric", "losses/nope", "--out", str(tmp_path / "x.png"), "--no-table"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distrl: plot: ") and "\n" not in err
    assert "losses/nope" in err and EVAL in err and CHARTS in err and "eval/episodic_return_std" in err
    assert not (tmp_path / "x.png").exists()


def test_empty_folder_or_missing_path_exits_2(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    assert plot.main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith("distrl: plot: no run directories")
    assert plot.main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert plot.main([str(tmp_path / "empty"), "--smooth", "0"]) == 2


def test_missing_matplotlib_exits_2_with_the_install_hint(runs: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert plot.main([str(runs), "--out", str(tmp_path / "x.png"), "--no-table"]) == 2
    assert "pip install -e '.[plot]'" in capsys.readouterr().err


# --- the table ------------------------------------------------------------------------------------


def test_table_has_one_line_per_run(runs: Path):
    lines = plot.summary_table([runs]).splitlines()
    assert len(lines) == 1 + 4
    assert lines[0].split()[:6] == ["run", "agent", "env", "seed", "mode", "status"]
    assert [line.split()[1] for line in lines[1:]] == ["a2c", "dqn", "dqn", "dqn"]
    dqn0 = next(line for line in lines if "__dqn__0__" in line).split()
    assert dqn0[2:6] == ["gym:CartPole-v1", "0", "debug", "completed"]
    assert dqn0[6:10] == ["4000", "4.0", "40.0", "40.0"]


def test_run_without_summary_is_running_and_still_plotted(runs: Path, tmp_path: Path, capsys):
    pytest.importorskip("matplotlib")
    make_run(runs, "dqn", "gym:CartPole-v1", 3, [(1002, 5.0), (2001, 15.0)], [(80, 1.0)], summary=False)
    line = next(line for line in plot.summary_table([runs]).splitlines() if "__dqn__3__" in line).split()
    assert line[5] == "running?" and line[6] == "2001"  # last env steps from metrics.csv
    assert plot.main([str(runs), "--out", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "running?" in out and len(out.splitlines()) == 1 + 5 + 1  # header, 5 runs, "wrote ..."


def test_add_parser_registers_the_plot_subcommand(runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    parser = argparse.ArgumentParser(prog="distrl")
    plot.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["plot", str(runs), "--out", str(tmp_path / "sub.png"), "--no-table"])
    assert (args.metric, args.x, args.smooth, args.no_table) == (EVAL, "env_steps", None, True)
    assert args.handler(args) == 0
    assert (tmp_path / "sub.png").is_file()


def test_python_dash_m_runs_the_module(runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "m.png"
    result = subprocess.run([sys.executable, "-m", "distrl.plot", str(runs), "--out", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and out.is_file()
