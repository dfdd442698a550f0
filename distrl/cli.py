"""The ``distrl`` command line: ``distrl train ...`` and ``distrl bench ...``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from distrl.agents import AGENTS

MODES = ("debug",)


def _train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an agent",
        description="Train an agent. Example: distrl train --agent dqn --env gym:CartPole-v1 --mode debug --seed 0",
    )
    parser.add_argument("--agent", required=True, choices=sorted(AGENTS), help="agent to train")
    parser.add_argument(
        "--env", required=True,
        help="environment: gym:<gymnasium id>, gridworld:<task>[?observation=grid&max_episode_len=N], or module.path:factory",
    )
    parser.add_argument("--mode", default="debug", choices=MODES, help="runtime: debug = single process, no Ray")
    parser.add_argument("--seed", type=int, default=0, help="experiment seed (every component derives its own)")
    parser.add_argument("--max-env-steps", type=int, default=50_000, help="environment-step budget")
    parser.add_argument("--run-dir", default="runs", help="folder that receives the run directory")
    parser.add_argument("--eval-every", type=int, default=5_000, help="env steps between greedy evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per greedy evaluation")
    parser.add_argument("--reward-threshold", type=float, default=None,
                        help="evaluation return that counts as solved (default: the environment's own)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override an agent config field (repeatable), e.g. --set learning_rate=1e-3")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads in this process")
    parser.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events (needs tensorboard)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from distrl.experiments import make_experiment_config, run_local

    try:
        config = make_experiment_config(
            args.agent, args.env, seed=args.seed, max_env_steps=args.max_env_steps, agent_overrides=args.overrides,
            eval_every=args.eval_every, eval_episodes=args.eval_episodes, reward_threshold=args.reward_threshold,
            run_dir=args.run_dir, progress=not args.no_progress, tensorboard=args.tensorboard,
            torch_threads=args.torch_threads,
        )
    except ValueError as error:
        print(f"distrl: configuration error: {error}", file=sys.stderr)
        return 2
    run_local(config)
    return 0


def _bench_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark (same as python -m distrl.bench)", add_help=False)
    parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from distrl.bench import main as bench_main

    return bench_main(args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distrl", description="Acme-style distributed RL on PyTorch and Ray.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    _bench_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("distrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
