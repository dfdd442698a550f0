#!/usr/bin/env python
"""A hyperparameter sweep on Ray Tune with ASHA early stopping (copy, paste, adapt).

    pip install -e '.[tune]'     # ray[tune]: Tune needs pandas and pyarrow
    python launch/tune.py --agent dqn --env gym:CartPole-v1 --num-samples 8 \\
        --max-env-steps 30000 --eval-every 5000 --cpus 4
    # a quick look (about two minutes on 2 CPUs):
    python launch/tune.py --num-samples 4 --max-env-steps 6000 --eval-every 1000 --cpus 2

Each trial samples the agent's search space below (DQN: ``learning_rate``
log-uniform in [1e-4, 3e-3], ``target_update_period`` from {32, 64, 128, 256}),
trains in one process (``run_local``, one CPU per trial, trials in parallel)
and reports every greedy evaluation to Tune. ASHA compares trials at rungs of
``--grace-period`` (default: the first evaluation) times powers of
``--reduction-factor`` env steps and stops those that trail; a stopped trial
ends at that evaluation, writing its checkpoint and ``summary.json``.

Where things go: Tune's results under ``--storage-path/NAME/`` (one folder
per trial: ``result.json``, ``progress.csv``, ``params.json``), and each
trial's distrl run directory (``config.json``, ``metrics.csv``,
``summary.json``, ``checkpoints/``, ``best_policy.pt``) inside its trial
folder, under ``distrl/``. The script ends with a table of the trials and the
best configuration (by the return of its last evaluation).

To sweep something else, edit ``SEARCH_SPACES`` (any field of the agent's
config, see ``distrl/agents/<agent>/config.py``; ``seed`` too) or the
``run_sweep`` call; ``distrl.experiments.tune.make_trainable`` gives the bare
trainable for a ``tune.Tuner`` of your own (pass it through
``with_clean_stop``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # A checkout that is not installed works too.

from ray import tune  # noqa: E402

from distrl.experiments.tune import run_sweep  # noqa: E402

#: What each agent's sweep samples: agent config fields -> Tune search spaces.
SEARCH_SPACES = {
    "dqn": {"learning_rate": tune.loguniform(1e-4, 3e-3), "target_update_period": tune.choice([32, 64, 128, 256])},
    "ddpg": {"actor_learning_rate": tune.loguniform(3e-5, 1e-3), "critic_learning_rate": tune.loguniform(3e-4, 3e-3)},
    "a2c": {"learning_rate": tune.loguniform(1e-4, 3e-3), "entropy_coef": tune.choice([0.0, 0.001, 0.01])},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent", default="dqn", choices=sorted(SEARCH_SPACES))
    parser.add_argument("--env", default="gym:CartPole-v1")
    parser.add_argument("--num-samples", type=int, default=8, help="trials (8)")
    parser.add_argument("--max-env-steps", type=int, default=30_000, help="env-step budget per trial (30000)")
    parser.add_argument("--eval-every", type=int, default=5_000, help="env steps between evaluations (5000)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="greedy episodes per evaluation (10)")
    parser.add_argument("--grace-period", type=int, default=None,
                        help="env steps before ASHA may stop a trial (default: --eval-every)")
    parser.add_argument("--reduction-factor", type=float, default=2, help="ASHA keeps 1/this at each rung (2)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every trial (0)")
    parser.add_argument("--storage-path", default="runs/tune", help="Tune's results folder (runs/tune)")
    parser.add_argument("--name", default=None, help="experiment folder name (default: AGENT_ENV_TIME)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="fixed agent config override for every trial (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    grid = run_sweep(
        args.agent, args.env, SEARCH_SPACES[args.agent], num_samples=args.num_samples,
        max_env_steps=args.max_env_steps, eval_every=args.eval_every, grace_period=args.grace_period,
        reduction_factor=args.reduction_factor, storage_path=args.storage_path, seed=args.seed,
        num_cpus=args.cpus, base_overrides=args.set, name=args.name, eval_episodes=args.eval_episodes,
    )
    swept = list(SEARCH_SPACES[args.agent])
    print(f"\n{len(grid)} trials, results in {grid.experiment_path}")
    for result in sorted(grid, key=lambda r: -(r.metrics or {}).get("eval_return", float("-inf"))):
        metrics = result.metrics or {}
        params = ", ".join(f"{k}={result.config[k]:.3g}" for k in swept)
        steps = metrics.get("env_steps", 0)
        ended = "error" if result.error else ("budget" if steps >= args.max_env_steps else "stopped")
        print(f"  {params}: last eval {metrics.get('eval_return', float('nan')):7.1f} at {steps:6d} env steps "
              f"({ended}); {metrics.get('run_dir', result.path)}")
    if grid.errors:
        print(f"{len(grid.errors)} trials failed; first error: {grid.errors[0]}", file=sys.stderr)
    if len(grid.errors) == len(grid):
        return 1
    best = grid.get_best_result(metric="eval_return", mode="max", scope="last")
    config = {k: best.config[k] for k in swept}
    print(f"best config: {json.dumps(config)}: last eval return {best.metrics['eval_return']:.1f} "
          f"at {best.metrics['env_steps']} env steps")
    print(f"best run directory: {best.metrics['run_dir']} (its best-evaluated weights: best_policy.pt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
