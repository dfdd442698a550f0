"""``distrl plot``: learning curves and a summary table from run directories.

    distrl plot runs/ --metric eval/episodic_return --x env_steps --out plot.png
    python -m distrl.plot RUN_DIR... [--x wall_clock_s] [--smooth N] [--no-table]

What is plotted. Each run directory gives one curve: the ``metrics.csv`` rows
of ``--metric`` against ``env_steps`` or ``wall_clock_s``. Runs with the same
(agent, env) and different seeds form one group, drawn as the mean over seeds
(the rl-baselines3-zoo convention, ``rl_zoo3/plots``) with a shaded 95%
confidence interval of that mean; one seed is a plain line.

Common x grid (``align_seeds``). Seeds log at slightly different points (an
evaluation lands on the first episode boundary after each ``--eval-every``
mark), so a group's curves are first put on one grid. Evaluation-like metrics,
whose k-th point sits at nearly the same env step in every seed (spread at most
half the gap between points), are averaged point by point: the k-th values of
all seeds at the seeds' mean x (mean env steps or mean wall clock; the band is
over values, not x), up to the shortest seed. Other metrics (per-episode
``charts/*``, losses, different cadences) are step-interpolated: the grid is
the union of the seeds' x values within the range every seed covers (at most
2,000 points, else evenly spaced), and a seed's value at a grid point is its
last value logged at or before it. The curve ends with the shortest seed, so
runs without a summary.json (running, or killed) form a dashed group of their
own, ``agent on env (n seeds, running?)``, and do not cut the finished ones'.

Confidence interval. Percentile bootstrap over seeds (Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice",
NeurIPS): 1,000 resamples of the seeds with replacement (numpy seed 0, so the
picture is reproducible), the mean of each resample at every grid point, and
the 2.5th and 97.5th percentiles of those means. With few seeds this interval
is narrow for what it claims (it cannot be wider than the spread of the seeds).

Smoothing. ``--smooth N`` replaces each run's values by the trailing mean
of its last N logged values (fewer at the start), before the grid step.
Default: 10 (episodes) for the dense ``charts/*`` metrics, 1 (none) for
``eval/*``, ``losses/*`` and the rest.

matplotlib (the ``plot`` extra: ``pip install -e '.[plot]'``) and numpy load
only when a plot is made, so importing this module is cheap.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

X_AXES = {"env_steps": "environment steps", "wall_clock_s": "wall clock (s)"}
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
MAX_GRID_POINTS = 2000
CHARTS_SMOOTH = 10


class PlotError(ValueError):
    """Bad input to ``distrl plot``: no runs, an unknown metric, a bad option."""


@dataclass
class Run:
    """One run directory: what config.json / summary.json say, and its metrics rows."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    rows: list[tuple[float, float, str, float]] = field(repr=False)  # wall_clock_s, env_steps, metric, value

    def _get(self, key: str, default: Any = None) -> Any:
        for source in (self.summary or {}, self.config):
            if source.get(key) is not None:
                return source[key]
        return default

    agent = property(lambda self: str(self._get("agent", _name_part(self.path, 1))))
    env = property(lambda self: str(self._get("env", _name_part(self.path, 0))))
    seed = property(lambda self: self._get("seed", _name_part(self.path, 2)))

    def metrics(self) -> set[str]:
        return {row[2] for row in self.rows}

    def curve(self, metric: str, x: str) -> tuple[list[float], list[float], list[float]]:
        """(env_steps, xs, values) of ``metric`` in logged order (env steps ascending)."""
        column = 0 if x == "wall_clock_s" else 1
        points = sorted((row[1], row[column], row[3]) for row in self.rows if row[2] == metric)
        return [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]


def _name_part(path: Path, index: int) -> str:
    parts = path.name.split("__")  # {env}__{agent}__{seed}__{time}
    return parts[index] if len(parts) == 4 else "?"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_rows(path: Path) -> list[tuple[float, float, str, float]]:
    rows = []
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            try:  # a running run's last line may be half written: skip what does not parse
                rows.append((float(record["wall_clock_s"]), float(record["env_steps"]), record["metric"],
                             float(record["value"])))
            except (KeyError, TypeError, ValueError):
                pass
    return rows


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories among ``paths``: each path itself if it holds a
    ``metrics.csv``, else every direct subfolder that does."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise PlotError(f"{path} is not a folder")
        if (path / "metrics.csv").is_file():
            runs = [path]
        else:
            runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "metrics.csv").is_file())
            if not runs:
                raise PlotError(f"no run directories (folders with a metrics.csv) in {path}")
        found += [p for p in runs if p not in found]
    if not found:
        raise PlotError("no run directories given")
    return found


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """The runs under ``paths`` (see ``find_run_dirs``), sorted by agent, env, seed, name."""
    runs = [Run(p, _read_json(p / "config.json") or {}, _read_json(p / "summary.json"), _read_rows(p / "metrics.csv"))
            for p in find_run_dirs(paths)]
    return sorted(runs, key=lambda r: (r.agent, r.env, (0, r.seed, "") if isinstance(r.seed, int)
                                       else (1, 0, str(r.seed)), r.path.name))


def default_smooth(metric: str) -> int:
    """Rolling-mean window for ``metric`` when ``--smooth`` is not given."""
    return CHARTS_SMOOTH if metric.startswith("charts/") else 1


def rolling_mean(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean of the last ``window`` values at each point (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def common_grid(curves: Sequence[tuple[Sequence[float], Sequence[float]]], max_points: int = MAX_GRID_POINTS):
    """The union of the curves' x values within the range all of them cover
    (at most ``max_points``, else evenly spaced points over that range);
    empty if the ranges do not overlap."""
    import numpy as np

    lo = max(xs[0] for xs, _ in curves)
    hi = min(xs[-1] for xs, _ in curves)
    if lo > hi:
        return np.array([])
    grid = np.unique(np.concatenate([np.asarray(xs, dtype=float) for xs, _ in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    if len(grid) > max_points:
        grid = np.linspace(lo, hi, max_points)
    return grid


def align_seeds(curves: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]]):
    """Puts the seeds' (env_steps, xs, values) curves on one x grid: returns
    ``(grid, values)`` with ``values`` of shape (seeds, len(grid)).

    Evaluation points: if the k-th points of all seeds lie at nearly the same
    env step (spread at most half the smallest gap between consecutive
    points), the k-th values are taken as they are, at the seeds' mean x, for
    k up to the shortest seed. Otherwise (per-episode metrics, different
    cadences): step interpolation onto ``common_grid`` of the xs.
    """
    import numpy as np

    n = min(len(steps) for steps, _, _ in curves)
    if n == 0:
        return np.array([]), np.zeros((len(curves), 0))
    steps = np.array([c[0][:n] for c in curves], dtype=float)
    if n == 1 or np.ptp(steps, axis=0).max() <= 0.5 * np.diff(steps.mean(axis=0)).min():
        xs = np.array([c[1][:n] for c in curves], dtype=float)
        return xs.mean(axis=0), np.array([c[2][:n] for c in curves], dtype=float)
    grid = common_grid([(xs, ys) for _, xs, ys in curves])
    return grid, np.stack([step_interpolate(xs, ys, grid) for _, xs, ys in curves])


def step_interpolate(xs: Sequence[float], values: Sequence[float], grid):
    """The last value logged at or before each grid point (``xs`` ascending;
    points before the first x take the first value)."""
    import numpy as np

    index = np.searchsorted(np.asarray(xs, dtype=float), grid, side="right") - 1
    return np.asarray(values, dtype=float)[np.clip(index, 0, len(values) - 1)]


def seed_band(curves, grid=None, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
              seed: int = BOOTSTRAP_SEED):
    """Mean over seeds and its percentile-bootstrap band (Agarwal et al. 2021).

    ``curves``: one row per seed, on a common grid (shape (seeds, points),
    ``grid`` None) or (xs, values) pairs step-interpolated onto ``grid``.
    Returns ``(mean, low, high)`` per point: the seed mean and the
    ``(1 -/+ confidence) / 2`` quantiles of the means of ``resamples``
    resamples of the seeds with replacement. One seed: low = high = mean.
    """
    import numpy as np

    if grid is not None:
        values = np.stack([step_interpolate(xs, ys, grid) for xs, ys in curves])
    else:
        values = np.atleast_2d(np.asarray(curves, dtype=float))
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    counts = np.stack([np.bincount(row, minlength=n) for row in picks]).astype(float)  # (resamples, seeds)
    means = counts @ values / n  # (resamples, points), without a (resamples, seeds, points) array
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


def _format_steps(value: float, _position: Any = None) -> str:
    """Axis ticks 500, 20k, 1.5M, 2G."""
    scale, suffix = next(((s, x) for s, x in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")) if abs(value) >= s), (1, ""))
    return f"{value / scale:g}{suffix}"


def plot_runs(run_dirs: Sequence[str | Path], metric: str = "eval/episodic_return", x: str = "env_steps",
              out: str | Path = "plot.png", smooth: int | None = None, title: str | None = None) -> Path:
    """Draws ``metric`` against ``x`` for the runs under ``run_dirs`` into the PNG ``out``.

    One mean curve per (agent, env) group with its 95% bootstrap band over
    seeds (see the module docstring), legend ``agent on env (n seeds)``.
    Runs that lack ``metric`` are left out with a note on stderr; a metric no
    run has raises ``PlotError`` naming the metrics they do have. Returns
    the path written (parent folders are created).
    """
    if x not in X_AXES:
        raise PlotError(f"--x must be one of {', '.join(X_AXES)}, not {x!r}")
    if smooth is not None and smooth < 1:
        raise PlotError(f"--smooth must be at least 1, not {smooth}")
    runs = load_runs(run_dirs)
    having = [run for run in runs if metric in run.metrics()]
    if not having:
        available = sorted(set().union(*(run.metrics() for run in runs)))
        raise PlotError(f"no run has the metric {metric!r}; the runs have: {', '.join(available) or 'no metrics'}")
    for run in runs:
        if all(run is not other for other in having):
            print(f"distrl: plot: {run.path.name} has no {metric!r}; left out", file=sys.stderr)
    window = default_smooth(metric) if smooth is None else smooth

    try:  # the Agg canvas directly, not pyplot: no global backend switch, no GUI, no figure to close
        from matplotlib import rcParams
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError as error:
        raise PlotError(f"plotting needs matplotlib ({error}): pip install -e '.[plot]'") from error

    fig = Figure(figsize=(9, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    groups: dict[tuple[str, str, bool], list[Run]] = {}
    for run in having:
        groups.setdefault((run.agent, run.env, run.summary is None), []).append(run)
    any_band = False
    for i, ((agent, env, running), group) in enumerate(groups.items()):
        colour = colours[i % len(colours)]
        curves = [(steps, xs, rolling_mean(ys, window)) for steps, xs, ys in (r.curve(metric, x) for r in group)]
        label = f"{agent} on {env} ({len(group)} seed{'s' if len(group) != 1 else ''}{', running?' * running})"
        style = {"color": colour, "linewidth": 1.8, "markersize": 4, "linestyle": "--" if running else "-"}
        grid, values = align_seeds(curves)
        if len(group) > 1 and len(grid) == 0:
            print(f"distrl: plot: the {agent} on {env} seeds share no {x} range: drawn one by one", file=sys.stderr)
        if len(group) == 1 or len(grid) == 0:
            for j, (_, xs, ys) in enumerate(curves):
                ax.plot(xs, ys, marker="o" if len(xs) <= 50 else None, label=label if j == 0 else None, **style)
            continue
        mean, low, high = seed_band(values)
        ax.plot(grid, mean, marker="o" if len(grid) <= 50 else None, label=label, **style)
        ax.fill_between(grid, low, high, color=colour, alpha=0.22, linewidth=0)
        any_band = True

    ax.set(xlabel=X_AXES[x], ylabel=metric + (f" (rolling mean of {window})" if window > 1 else ""))
    if x == "env_steps":
        ax.xaxis.set_major_formatter(FuncFormatter(_format_steps))
    envs = sorted({run.env for run in having})
    ax.set_title(title if title is not None else f"{metric} on {envs[0]}" if len(envs) == 1 else metric)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small", title_fontsize="small", framealpha=0.9,
              title=f"mean over seeds; shaded: {CONFIDENCE:.0%} bootstrap CI" if any_band else None)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def summary_table(run_dirs: Sequence[str | Path]) -> str:
    """One line per run under ``run_dirs`` (plus a header) from its summary.json;
    a run without one (still running, or killed before writing it) shows
    status ``running?`` and its last env steps and wall clock from metrics.csv."""
    header = ("run", "agent", "env", "seed", "mode", "status", "env_steps", "wall_s",
              "final_eval", "best_eval", "solved_steps", "solved_s")
    lines = [header]
    for run in load_runs(run_dirs):
        s = run.summary or {}
        if run.summary is None:
            last = max(run.rows, default=(None, None, "", 0.0), key=lambda row: row[1])
            steps, wall = (int(last[1]) if last[1] is not None else None), last[0]
        else:
            steps, wall = s.get("env_steps"), s.get("wall_clock_s")
        lines.append((run.path.name, run.agent, run.env, _fmt(run.seed), _fmt(s.get("mode", "?")),
                      str(s.get("status", "completed")) if run.summary is not None else "running?",
                      _fmt(steps), _fmt(wall), _fmt(s.get("final_eval_return")), _fmt(s.get("best_eval_return")),
                      _fmt(s.get("solved_at_env_steps")), _fmt(s.get("solved_at_wall_clock_s"))))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = set(range(6, len(header)))
    return "\n".join("  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
                     for line in lines)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories, or folders whose subfolders are run directories")
    parser.add_argument("--metric", default="eval/episodic_return",
                        help="metric name from metrics.csv (default: eval/episodic_return)")
    parser.add_argument("--x", default="env_steps", choices=sorted(X_AXES), help="x axis (default: env_steps)")
    parser.add_argument("--out", default="plot.png", metavar="FILE.png", help="PNG to write (default: plot.png)")
    parser.add_argument("--smooth", type=int, default=None, metavar="N",
                        help=f"rolling mean over N logged values per run (default: {CHARTS_SMOOTH} for "
                             "charts/*, 1 otherwise)")
    parser.add_argument("--title", default=None, help="plot title (default: the metric and env)")
    parser.add_argument("--no-table", action="store_true", help="do not print the table of run summaries")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    try:
        if not args.no_table:
            print(summary_table(args.run_dirs))
        path = plot_runs(args.run_dirs, metric=args.metric, x=args.x, out=args.out, smooth=args.smooth,
                         title=args.title)
    except (PlotError, OSError) as error:
        print(f"distrl: plot: {error}", file=sys.stderr)
        return 2
    print(f"distrl: plot: wrote {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Registers ``plot`` on an argparse subparsers object (handler: ``args.handler(args)`` -> exit code)."""
    parser = subparsers.add_parser(
        "plot", help="plot learning curves of run directories",
        description="Plot a metric of run directories: the mean over seeds of each (agent, env) with a "
                    "95%% bootstrap confidence band, and print a table of the runs' summaries. "
                    "Example: distrl plot runs/ --metric eval/episodic_return --out plot.png",
    )
    _add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m distrl.plot RUN_DIR... [options]``."""
    parser = argparse.ArgumentParser(prog="python -m distrl.plot", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
