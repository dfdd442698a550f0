"""The ``distrl`` command line: ``train``, ``evaluate``, ``plot``, ``config`` and ``bench``.

``--mode debug`` (the default) runs in one process and never imports ray;
``--mode local`` starts a private Ray instance on this machine (never
attaching to a cluster that may run there) and ``--mode cluster`` attaches
to the cluster at ``--address``; both run the same experiment on Ray actors.
``--config FILE`` reads train options from a YAML file (see
``distrl.experiments.config_file`` and ``launch/configs/``); flags override it.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from distrl.agents import AGENTS
from distrl.experiments.distributed.config import LEARNER_DEVICES
from distrl.utils.config import ConfigError

if TYPE_CHECKING:
    from distrl.experiments import ExperimentConfig

MODES = ("debug", "local", "cluster")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the epilog's (the agent fields') line breaks."""


def agent_fields_text(agent: str) -> str:
    """Every field of an agent's config with its type, default and one-line doc (for --help and
    ``distrl config``), as ``--set KEY=VALUE`` takes them."""
    import typing

    from distrl.agents import get_agent
    from distrl.utils.config import field_docs

    config_class = get_agent(agent).Config
    hints = typing.get_type_hints(config_class)
    defaults = config_class()
    lines = [f"{agent} config fields (set with --set KEY=VALUE or agent_config in a --config file):"]
    for name, text in field_docs(config_class).items():
        kind = str(hints[name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        lines.append(f"  {name} ({kind}, default {getattr(defaults, name)!r})\n      {text}")
    return "\n".join(lines)


def _config_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="list an agent's config fields with their defaults and docs",
        description="List the fields of an agent's config (what --set KEY=VALUE takes), with defaults and docs.",
    )
    parser.add_argument("agent", choices=sorted(AGENTS))
    parser.set_defaults(handler=lambda args: print(agent_fields_text(args.agent)) or 0)


def _train_parser(subparsers: argparse._SubParsersAction, agent: str | None = None) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train an agent",
        description="Train an agent. Example: distrl train --agent dqn --env gym:CartPole-v1 --mode debug --seed 0. "
                    "With --agent, --help also lists that agent's config fields.",
        formatter_class=_HelpFormatter,
        epilog=agent_fields_text(agent) if agent else "distrl config <agent> lists an agent's config fields.",
    )
    parser.add_argument(
        "--config", default=None, metavar="FILE",
        help="YAML file of train options and agent_config fields (see launch/configs/), or a run's "
             "config.json to run it again; flags given here win",
    )
    parser.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest intact checkpoint, with its own config "
             "(only --max-env-steps and --time-budget-s may change)",
    )
    parser.add_argument("--agent", default=None, choices=sorted(AGENTS),
                        help="agent to train (required here or in --config)")
    parser.add_argument(
        "--env", default=None,
        help="environment (required here or in --config): gym:<gymnasium id>, "
             "gridworld:<task>[?observation=grid&max_episode_len=N], or module.path:factory",
    )
    parser.add_argument(
        "--mode", default="debug", choices=MODES,
        help="runtime: debug = single process, no Ray; local = Ray actors on a private Ray instance "
             "on this machine; cluster = Ray actors on the cluster at --address",
    )
    parser.add_argument("--address", default=None,
                        help="--mode cluster only: Ray cluster address, 'auto' (default) or host:port")
    parser.add_argument("--num-actors", type=int, default=None,
                        help="local/cluster: environment actors (default: CPUs minus one, at least 1)")
    parser.add_argument("--envs-per-actor", type=int, default=None,
                        help="local/cluster: environments per actor (the agent's envs_per_actor; default: its own)")
    parser.add_argument("--learner-device", default="auto", choices=LEARNER_DEVICES,
                        help="local/cluster: where the learner runs (auto: CUDA when Ray has a GPU)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="--mode local only: CPUs of the private Ray instance (default: all)")
    parser.add_argument("--time-budget-s", type=float, default=None,
                        help="local/cluster: stop after this many seconds even before --max-env-steps")
    parser.add_argument("--seed", type=int, default=0, help="experiment seed (every component derives its own)")
    parser.add_argument("--max-env-steps", type=int, default=50_000, help="environment-step budget")
    parser.add_argument("--run-dir", default="runs", help="folder that receives the run directory")
    parser.add_argument("--eval-every", type=int, default=5_000, help="env steps between greedy evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per greedy evaluation")
    parser.add_argument("--eval-max-episode-steps", type=int, default=None,
                        help="cap on an evaluation episode's env steps (default: the env's own time limit, "
                             "else 27000)")
    parser.add_argument("--reward-threshold", type=float, default=None,
                        help="evaluation return that counts as solved (default: the environment's own)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override an agent config field (repeatable), e.g. --set learning_rate=1e-3")
    parser.add_argument("--checkpoint-every-s", type=float, default=120.0,
                        help="seconds between checkpoints (the first within 30 s); RUN_DIR/checkpoints")
    parser.add_argument("--checkpoint-every", dest="checkpoint_every_env_steps", type=int, default=None,
                        metavar="ENV_STEPS", help="also checkpoint every this many env steps")
    parser.add_argument("--keep-checkpoints", type=int, default=3, help="newest checkpoints kept (>= 2)")
    parser.add_argument("--checkpoint-replay", choices=("auto", "on", "off"), default="auto",
                        help="put the replay table in checkpoints (auto: when it holds at most 2 GiB)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads in this process")
    parser.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events (needs tensorboard)")
    parser.add_argument("--wandb-project", default=None, metavar="PROJECT",
                        help="also log to Weights & Biases under PROJECT (needs the wandb extra; "
                             "WANDB_MODE=offline keeps the run on disk)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_train)
    return parser


_DISTRIBUTED_FLAGS = {
    "num_actors": "--num-actors",
    "envs_per_actor": "--envs-per-actor",
    "num_cpus": "--num-cpus",
    "time_budget_s": "--time-budget-s",
    "address": "--address",
}


def _check_mode_flags(args: argparse.Namespace) -> None:
    """Rejects flags that the chosen mode would silently ignore."""
    allowed = {
        "debug": set(),
        "local": {"num_actors", "envs_per_actor", "num_cpus", "time_budget_s"},
        "cluster": {"num_actors", "envs_per_actor", "time_budget_s", "address"},
    }[args.mode]
    for name, flag in _DISTRIBUTED_FLAGS.items():
        if getattr(args, name) is not None and name not in allowed:
            raise ValueError(f"{flag} does not apply to --mode {args.mode}")
    if args.mode == "debug" and args.learner_device != "auto":
        raise ValueError("--learner-device does not apply to --mode debug (the debug mode runs on the CPU)")


def _agent_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides plus ``--envs-per-actor`` (every agent's config has ``envs_per_actor``)."""
    overrides = list(args.overrides)
    if args.envs_per_actor is not None:
        overrides.append(f"envs_per_actor={args.envs_per_actor}")
    return overrides


def build_experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment that parsed ``distrl train`` arguments describe, checked but not run."""
    from distrl.experiments import make_experiment_config

    return make_experiment_config(
        args.agent, args.env, seed=args.seed, max_env_steps=args.max_env_steps,
        agent_overrides=_agent_overrides(args),
        eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        eval_max_episode_steps=args.eval_max_episode_steps, reward_threshold=args.reward_threshold,
        run_dir=args.run_dir, progress=not args.no_progress, tensorboard=args.tensorboard,
        wandb_project=args.wandb_project, checkpoint_every_s=args.checkpoint_every_s,
        checkpoint_every_env_steps=args.checkpoint_every_env_steps, keep_checkpoints=args.keep_checkpoints,
        checkpoint_replay={"auto": None, "on": True, "off": False}[args.checkpoint_replay],
        torch_threads=args.torch_threads,
    )


def _train(args: argparse.Namespace) -> int:
    """``distrl train``: 0 when the run completed, 2 for a configuration error (before anything
    runs), 1 when a run that started failed (its summary.json says why), 130 / 143 when SIGINT /
    SIGTERM stopped it (after a final checkpoint; ``--resume`` continues it)."""
    from distrl.errors import TrainingError
    from distrl.experiments import run_local

    try:
        _check_mode_flags(args)
        config = build_experiment_config(args)
        resume = args.resume
        if args.mode == "debug":
            return _report_training(lambda: run_local(config, resume=resume))
        from distrl.experiments.distributed import DistributedConfig, run_distributed

        dist = DistributedConfig(
            num_actors=args.num_actors, envs_per_actor=None, learner_device=args.learner_device,
            time_budget_s=args.time_budget_s, num_cpus=args.num_cpus,
            address=(args.address or "auto") if args.mode == "cluster" else None,
        )
        return _report_training(lambda: run_distributed(config, dist, resume=resume))
    except TrainingError:
        raise
    except ConnectionError as error:
        print(f"distrl: cannot reach the Ray cluster at {args.address or 'auto'}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        source = f" (options from --config {args.config} where no flag sets them)" if args.config else ""
        print(f"distrl: configuration error: {error}{source}", file=sys.stderr)
        return 2


def _report_training(run: Callable[[], object]) -> int:
    """Runs a training with graceful SIGINT/SIGTERM handling (``distrl.utils.signals``); a
    ``TrainingError`` is printed with the traceback of its cause, exit 1; a stop signal exits
    128 + its number after the run's final checkpoint."""
    from distrl.errors import TrainingError
    from distrl.utils.signals import RunInterrupted, graceful_stop

    try:
        with graceful_stop():
            run()
    except RunInterrupted as stop:
        print(f"distrl: {stop}; the run's final checkpoint and summary are written: continue it with "
              "distrl train --resume RUN_DIR", file=sys.stderr)
        return stop.exit_code
    except TrainingError as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        traceback.print_exception(cause, file=sys.stderr)
        print(f"distrl: {error} (run directory: {error.run_dir})", file=sys.stderr)
        return 1
    return 0


def _bench_parser(subparsers: argparse._SubParsersAction) -> None:
    # Listed for the top-level help only: main() hands ``distrl bench ...`` to distrl.bench as it is.
    subparsers.add_parser("bench", help="run a benchmark (distrl bench --help lists them)", add_help=False)


def _requested_agent(argv: Sequence[str]) -> str | None:
    """The ``--agent`` of a ``train --help`` command line, so the help can list its config fields."""
    if "-h" not in argv and "--help" not in argv:
        return None
    for index, item in enumerate(argv):
        if item == "--agent" and index + 1 < len(argv) and argv[index + 1] in AGENTS:
            return argv[index + 1]
        if item.startswith("--agent=") and item.split("=", 1)[1] in AGENTS:
            return item.split("=", 1)[1]
    return None


def _build_parsers(argv: Sequence[str] = ()) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``distrl`` parser and its ``train`` subparser (which a config file fills defaults into)."""
    from distrl import evaluate, plot

    parser = argparse.ArgumentParser(prog="distrl", description="Acme-style distributed RL on PyTorch and Ray.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    train_parser = _train_parser(subparsers, _requested_agent(argv))
    evaluate.add_parser(subparsers)
    plot.add_parser(subparsers)
    _config_parser(subparsers)
    _bench_parser(subparsers)
    return parser, train_parser


def build_parser() -> argparse.ArgumentParser:
    """The ``distrl`` parser (without a config file's defaults; ``parse_args`` applies those)."""
    return _build_parsers()[0]


#: The options ``--resume`` lets a resumed run change: its budget, and how it is shown.
_RESUME_OPTIONS = frozenset({"--resume", "--max-env-steps", "--time-budget-s", "--no-progress", "--address"})


def _check_resume_flags(argv: Sequence[str], train_parser: argparse.ArgumentParser) -> None:
    """Raises ConfigError for a flag other than the budget's next to ``--resume`` (the run keeps its config)."""
    known = {option for action in train_parser._actions for option in action.option_strings}
    given = {item.split("=", 1)[0] for item in argv if item.startswith("--")} & known
    others = sorted(given - _RESUME_OPTIONS)
    if others:
        raise ConfigError(
            f"--resume continues a run with its own config (RUN_DIR/config.json); only --max-env-steps and "
            f"--time-budget-s may change, got {', '.join(others)}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses a ``distrl`` command line; for ``train``, a ``--config`` file's values fill the unset options.

    The file's options become the train parser's defaults and the command line
    is parsed again, so explicit flags win; its ``agent_config`` goes before
    the ``--set`` overrides, so those win too. Raises ``ConfigError`` for a bad
    file; exits 2 (argparse's usage error) when no agent or env is given.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, train_parser = _build_parsers(argv)
    args = parser.parse_args(argv)
    if args.command != "train":
        return args
    config_file = None
    if args.resume is not None:
        _check_resume_flags(argv, train_parser)
        args.config = str(Path(args.resume) / "config.json")
    if args.config is not None:
        from distrl.experiments.config_file import load_config_file

        # argparse has no public way to list a parser's options.
        config_file = load_config_file(args.config, train_parser._actions)
        train_parser.set_defaults(**config_file.options)
        args = parser.parse_args(argv)
    missing = [f"--{name}" for name in ("agent", "env") if getattr(args, name) is None]
    if missing:
        train_parser.error(f"the following arguments are required: {', '.join(missing)} (as flags or in --config)")
    if config_file is not None:
        args.overrides = config_file.agent_overrides(args.agent) + args.overrides
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a ``distrl`` command line; returns the exit code (0 ok, 1 runtime failure,
    2 configuration error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from distrl.bench import main as bench_main

        return bench_main(argv[1:])
    try:
        args = parse_args(argv)
    except ConfigError as error:
        print(f"distrl: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("distrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
