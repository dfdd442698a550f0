"""``distrl evaluate RUN_DIR|CHECKPOINT``: play a trained policy, print its returns, record videos.

By default it replays the run's own evaluation (the same seed, number of
episodes and step cap, with the best-evaluated weights), so its mean repeats
the run's ``best_eval_return``; ``--episodes``, ``--seed``, ``--env`` and
``--max-episode-steps`` change that. It writes ``evaluation.json`` (in the
run directory, or ``--out``), and with ``--video DIR`` an mp4 per episode.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from distrl.utils.config import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Registers ``distrl evaluate`` on the command line's subparsers."""
    parser = subparsers.add_parser(
        "evaluate", help="play a trained policy: returns, evaluation.json, videos",
        description=__doc__.split("\n\n")[0] + " " + " ".join(__doc__.split("\n\n")[1].split()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("path", metavar="RUN_DIR|CHECKPOINT",
                        help="a run directory, or its best_policy.pt or a checkpoints/ckpt-N/learner.pt")
    parser.add_argument("--which", choices=("best", "final"), default="best",
                        help="for a run directory: best_policy.pt (the best evaluation) or the newest intact checkpoint (the end)")
    parser.add_argument("--episodes", type=int, default=None, help="episodes to play (default: the run's eval_episodes)")
    parser.add_argument("--seed", type=int, default=None, help="evaluation seed (default: the run's seed)")
    parser.add_argument("--env", default=None, help="another environment name to play in (default: the run's)")
    parser.add_argument("--max-episode-steps", type=int, default=None,
                        help="cap on an episode's steps (default: the run's, else the env's own limit, else 27000)")
    parser.add_argument("--video", default=None, metavar="DIR", help="record each episode as DIR/episode-<i>.mp4")
    parser.add_argument("--render", choices=("human",), default=None,
                        help="show the episodes in a window (gymnasium and ALE environments, needs a display)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="where evaluation.json goes (default: the run directory)")
    parser.set_defaults(handler=run)
    return parser


def evaluate_run(
    path: str | Path, which: str = "best", episodes: int | None = None, seed: int | None = None,
    env: str | None = None, max_episode_steps: int | None = None, video: str | Path | None = None,
    render: str | None = None,
) -> dict[str, Any]:
    """Loads the policy at ``path`` (``load_policy``), plays the episodes and returns the record
    ``evaluation.json`` holds (returns, lengths, which episodes the cap cut, their statistics)."""
    from distrl.experiments.saved_policy import load_policy

    for name, value in (("episodes", episodes), ("max_episode_steps", max_episode_steps)):
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    policy = load_policy(path, which=which)
    result = policy.evaluate(episodes, seed, env, max_episode_steps, video=video, render_mode=render)
    returns, lengths = result.returns, result.lengths
    return {
        "path": str(path), "which": policy.which, "agent": policy.agent, "env": env or policy.env,
        "trained_on": policy.env, "seed": policy.seed if seed is None else seed,
        "episodes": len(returns), "learner_steps": policy.version,
        "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)), "return_max": float(np.max(returns)),
        "length_mean": float(np.mean(lengths)), "length_min": int(np.min(lengths)), "length_max": int(np.max(lengths)),
        "episodes_cut": int(np.count_nonzero(result.cut)),
        "returns": returns.tolist(), "lengths": lengths.tolist(), "cut": result.cut.tolist(),
        "videos": sorted(str(p) for p in Path(video).glob("episode-*.mp4")) if video is not None else [],
        "run_dir": str(policy.run_dir),
    }


def _recorded_return(run_dir: Path, which: str) -> float | None:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summary.get("best_eval_return" if which == "best" else "final_eval_return")


def run(args: argparse.Namespace) -> int:
    """The ``distrl evaluate`` handler: 0 on success, 2 for a bad path or option."""
    from distrl.experiments.reporting import format_return

    try:
        record = evaluate_run(args.path, args.which, args.episodes, args.seed, args.env, args.max_episode_steps,
                              args.video, args.render)
    except (ConfigError, ValueError, ImportError) as error:
        print(f"distrl: evaluate: {error}", file=sys.stderr)
        return 2
    run_dir = Path(record["run_dir"])
    out = Path(args.out) if args.out else run_dir / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(
        f"distrl evaluate: {record['agent']} on {record['env']} ({record['which']} policy, learner step "
        f"{record['learner_steps']}), {record['episodes']} episodes, seed {record['seed']}: return "
        f"{format_return(record['return_mean'])} +- {format_return(record['return_std'])} "
        f"(min {format_return(record['return_min'])}, max {format_return(record['return_max'])}); "
        f"length {record['length_mean']:.1f} (min {record['length_min']}, max {record['length_max']})"
        + (f"; {record['episodes_cut']} episodes cut by the step cap" if record["episodes_cut"] else "")
    )
    recorded = _recorded_return(run_dir, record["which"])
    if recorded is not None and args.env is None and args.seed is None and args.episodes is None:
        print(f"  the run recorded {format_return(recorded)} for this policy")
    for path in record["videos"]:
        print(f"  video: {path}")
    print(f"  wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m distrl.evaluate ...``, the same as ``distrl evaluate ...``."""
    parser = argparse.ArgumentParser(prog="distrl")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
