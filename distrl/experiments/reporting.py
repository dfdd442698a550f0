"""Run directory, progress bar, evaluation bookkeeping and the final summary.

Shared by every runtime so a debug run and a distributed run leave the same
files: ``config.json``, ``metrics.csv`` (tidy rows), optionally TensorBoard
events, and ``summary.json``, plus one summary line on stdout.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from distrl.experiments.evaluation import EvaluationResult
from distrl.utils.loggers import (
    CSVLogger,
    Logger,
    MultiLogger,
    TensorBoardLogger,
    WandbLogger,
    tensorboard_available,
)


#: The progress bar: agent and env, percentage, bar, steps, times, then the figures (``RunRecorder._figures``).
PROGRESS_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {remaining}{postfix}"


def short_env_name(env: str, width: int = 22) -> str:
    """An environment name for the progress bar: no ``gym:`` prefix, no ``?options``, at most
    ``width`` characters (the end kept: ``...channels_last``)."""
    name = env.split("?", 1)[0]
    name = name[4:] if name.startswith("gym:") else name
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _compact(value: float) -> str:
    """3 significant digits with a k/M suffix: 1234 -> 1.23k."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def run_name(env: str, agent: str, seed: int, start_time: float) -> str:
    """``{env}__{agent}__{seed}__{unix time}`` with the env name made filesystem-safe."""
    safe_env = re.sub(r"[^A-Za-z0-9._-]+", "_", env).strip("_")
    return f"{safe_env}__{agent}__{seed}__{int(start_time)}"


def format_encoder(description: Any) -> str:
    """One line for an encoder description: the text, or ``path: text, ...`` for a nest."""
    if isinstance(description, Mapping):
        return ", ".join(f"{path}: {text}" for path, text in description.items())
    return str(description)


class RunRecorder:
    """Owns a run's directory, loggers, progress bar and evaluation history.

    ``config`` is written to ``config.json``; when it has an
    ``observation_encoder`` entry (``experiment_record`` with a spec), that
    is also printed to stderr, one line, as the run starts.

    Resuming: with ``resume_dir`` and ``resume_state`` (``get_state()`` as a
    checkpoint saved it) the recorder continues that run directory instead
    of making one: ``metrics.csv`` is cut back to the checkpoint (rows a
    crash left after it are dropped, so a resumed run writes each row once)
    and appended to, and the evaluation history, the best evaluation, the
    episode count and the wall clock carry on.
    """

    def __init__(
        self,
        run_root: str,
        env: str,
        agent: str,
        seed: int,
        mode: str,
        max_env_steps: int,
        config: Mapping[str, Any],
        reward_threshold: float | None,
        progress: bool = True,
        tensorboard: bool = False,
        wandb_project: str | None = None,
        resume_dir: str | Path | None = None,
        resume_state: Mapping[str, Any] | None = None,
    ) -> None:
        resumed = dict(resume_state or {})
        self.start_time = time.time()
        self._resumed_elapsed_s = float(resumed.get("elapsed_s", 0.0))
        self._created = time.perf_counter()
        self._start = self._created - self._resumed_elapsed_s
        self.setup_s: float | None = None
        self.env, self.agent, self.seed, self.mode = env, agent, seed, mode
        self.reward_threshold = reward_threshold
        if resume_dir is not None:
            self.run_dir = Path(resume_dir)
        else:
            self.run_dir = Path(run_root) / run_name(env, agent, seed, self.start_time)
            suffix = 1
            while self.run_dir.exists():
                suffix += 1
                self.run_dir = Path(run_root) / f"{run_name(env, agent, seed, self.start_time)}_{suffix}"
            self.run_dir.mkdir(parents=True)
            with open(self.run_dir / "config.json", "w") as f:
                json.dump(config, f, indent=2, default=str)
        if "observation_encoder" in config:
            print(f"distrl: {env} observations -> {format_encoder(config['observation_encoder'])}", file=sys.stderr)
        self._csv = CSVLogger(self.run_dir / "metrics.csv", truncate_to=resumed.get("metrics_csv_bytes"),
                              start_offset_s=float(resumed.get("elapsed_s", 0.0)))
        loggers: list[Logger] = [self._csv]
        if tensorboard:
            if not tensorboard_available():
                raise RuntimeError("tensorboard logging was requested but the 'tensorboard' package is not installed")
            loggers.append(TensorBoardLogger(self.run_dir / "tensorboard"))
        if wandb_project:
            loggers.append(WandbLogger(wandb_project, self.run_dir.name, self.run_dir, config))
        self.logger: Logger = MultiLogger(loggers)
        self.recent_returns: collections.deque[float] = collections.deque(resumed.get("recent_returns", ()), maxlen=20)
        self.episodes = int(resumed.get("episodes", 0))
        self.eval_history: list[dict[str, float]] = list(resumed.get("eval_history", []))
        self.best_evaluation: dict[str, float] | None = resumed.get("best_evaluation")
        self.solved_at_env_steps: int | None = resumed.get("solved_at_env_steps")
        self.solved_at_wall_clock_s: float | None = resumed.get("solved_at_wall_clock_s")
        self.resumed_from_env_steps: int | None = resumed.get("env_steps") if resume_dir is not None else None
        self._bar = tqdm(
            total=max_env_steps,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            disable=not progress,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,
            desc=f"{agent} {short_env_name(env)}",
            bar_format=PROGRESS_FORMAT,
        )
        self._extra: Mapping[str, float] = {}
        self._env_steps, self._learner_steps = 0, 0
        self._bar_steps = 0

    def get_state(self, env_steps: int) -> dict[str, Any]:
        """What a resumed run needs of this recorder at ``env_steps``; flushes ``metrics.csv``
        and records its size, so the resumed run continues from exactly these rows."""
        return {
            "env_steps": int(env_steps), "elapsed_s": self.elapsed_s, "metrics_csv_bytes": self._csv.flush(),
            "episodes": self.episodes, "recent_returns": list(self.recent_returns),
            "eval_history": list(self.eval_history), "best_evaluation": self.best_evaluation,
            "solved_at_env_steps": self.solved_at_env_steps, "solved_at_wall_clock_s": self.solved_at_wall_clock_s,
        }

    def start_training(self) -> None:
        """Starts the run's clock (``wall_clock_s`` here and in ``metrics.csv``) now, when the
        runtime has built its components and training begins. Setting up (networks, optimizers,
        whose first construction in a process imports ``torch._dynamo``: about 1.4 s here; Ray
        actors) is reported as ``setup_s`` instead, so times to solve count training only, as
        the peers' do."""
        now = time.perf_counter()
        self.setup_s = round(now - self._created, 3)
        self._start = now - self._resumed_elapsed_s
        self._csv.restart_clock(self._resumed_elapsed_s)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._start

    def episode_done(self, episode_return: float) -> None:
        self.episodes += 1
        self.recent_returns.append(episode_return)

    def progress(self, env_steps: int, learner_steps: int, extra: Mapping[str, float] | None = None) -> None:
        """Advances the bar to ``env_steps`` and refreshes its figures (``extra``: short name -> value)."""
        self._env_steps, self._learner_steps = env_steps, learner_steps
        if extra is not None:
            self._extra = extra
        self._bar.set_postfix_str(self._figures(), refresh=False)
        self._bar.update(max(0, env_steps - self._bar_steps))
        self._bar_steps = max(self._bar_steps, env_steps)

    def _figures(self) -> str:
        """The bar's figures, most important first (a narrow terminal cuts the end): the recent
        training return, the latest evaluation, env steps/s and updates/s, then ``extra``."""
        elapsed = max(self.elapsed_s, 1e-9)
        parts = [f"ret {_compact(float(np.mean(self.recent_returns))) if self.recent_returns else '-'}"]
        if self.eval_history:
            parts.append(f"eval {_compact(self.eval_history[-1]['return_mean'])}")
        parts.append(f"{_compact(self._env_steps / elapsed)} st/s")
        parts.append(f"{_compact(self._learner_steps / elapsed)} up/s")
        parts.extend(f"{name} {value:.3g}" for name, value in self._extra.items())
        return " ".join(parts)

    def record_evaluation(self, result: EvaluationResult, env_steps: int, learner_steps: int) -> bool:
        """Logs an evaluation and notes the first one at or above the reward threshold.

        Returns True when its mean return beats every earlier evaluation's
        (the caller then keeps the evaluated weights as the best policy).
        Episodes the step cap cut count with the return they had, and their
        number is recorded (``episodes_cut``, ``eval/episodes_cut``), as is the
        evaluation's wall-clock time (``duration_s``).
        """
        mean, std = float(np.mean(result.returns)), float(np.std(result.returns))
        best = self.best_evaluation
        is_best = best is None or mean > best["return_mean"]
        self.eval_history.append(
            {"env_steps": env_steps, "learner_steps": learner_steps, "wall_clock_s": round(self.elapsed_s, 3),
             "return_mean": mean, "return_std": std, "length_mean": float(np.mean(result.lengths)),
             "episodes_cut": int(np.count_nonzero(result.cut)), "duration_s": round(result.duration_s, 3)}
        )
        self.logger.write(
            {"eval/episodic_return": mean, "eval/episodic_return_std": std,
             "eval/episodes_cut": float(np.count_nonzero(result.cut))}, env_steps)
        if self.solved_at_env_steps is None and self.reward_threshold is not None and mean >= self.reward_threshold:
            self.solved_at_env_steps = env_steps
            self.solved_at_wall_clock_s = round(self.elapsed_s, 3)
        if is_best:
            self.best_evaluation = self.eval_history[-1]
        return is_best

    def finish(
        self,
        env_steps: int,
        learner_steps: int,
        extra: Mapping[str, Any] | None = None,
        status: str = "completed",
        error: BaseException | None = None,
    ) -> dict[str, Any]:
        """Writes ``summary.json``, prints the summary line and returns the summary.

        ``status`` is ``completed``, or ``failed`` / ``interrupted`` for a run
        that ended early (``fail``), whose summary then holds ``error``: the
        exception's type, message and traceback. The runtimes add
        ``end_reason`` to a completed run's ``extra``: ``budget``
        (``max_env_steps``), ``time_budget``, ``on_evaluation`` (the
        evaluation callback asked to stop) or ``on_poll``.
        """
        self._bar.set_postfix_str(self._figures(), refresh=False)  # The last frame shows the final evaluation.
        self._bar.refresh()
        self._bar.close()
        self.logger.close()
        final = self.eval_history[-1] if self.eval_history else None
        summary: dict[str, Any] = {
            "status": status,
            "agent": self.agent,
            "env": self.env,
            "seed": self.seed,
            "mode": self.mode,
            "env_steps": int(env_steps),
            "learner_steps": int(learner_steps),
            "episodes": self.episodes,
            "wall_clock_s": round(self.elapsed_s, 3),
            "setup_s": self.setup_s,
            "final_eval_return": None if final is None else final["return_mean"],
            "final_eval_return_std": None if final is None else final["return_std"],
            "best_eval_return": None if self.best_evaluation is None else self.best_evaluation["return_mean"],
            "best_eval_env_steps": None if self.best_evaluation is None else int(self.best_evaluation["env_steps"]),
            "reward_threshold": self.reward_threshold,
            "solved_at_env_steps": self.solved_at_env_steps,
            "solved_at_wall_clock_s": self.solved_at_wall_clock_s,
            "run_dir": str(self.run_dir),
            "evaluations": self.eval_history,
        }
        if self.resumed_from_env_steps is not None:
            summary["resumed_from_env_steps"] = self.resumed_from_env_steps
        if error is not None:
            summary["error"] = {
                "type": type(error).__name__,
                "message": str(error),
                "traceback": "".join(traceback.format_exception(error)),
            }
        if extra:
            summary.update(extra)
        with open(self.run_dir / "summary.json", "w") as f:
            json.dump(summary, f, indent=2, default=str)
        print(summary_line(summary), flush=True)
        return summary

    def fail(self, env_steps: int, learner_steps: int, error: BaseException) -> dict[str, Any]:
        """``finish`` for a run that ended early: status ``interrupted`` for Ctrl-C,
        ``failed`` otherwise, with the error in the summary; never raises."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        try:
            return self.finish(env_steps, learner_steps, status=status, error=error)
        except Exception as secondary:  # noqa: BLE001 - the original error is what matters.
            print(f"distrl: could not write the summary of the {status} run: {secondary}", file=sys.stderr)
            return {"status": status}


def format_return(value: float) -> str:
    """A return as printed: one decimal from 1 up, three significant digits below
    (so -0.0029 is not shown as -0.0)."""
    if value == 0:
        return "0"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.3g}"


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line a person can read at a glance (and grep in CI logs)."""
    final = summary["final_eval_return"]
    final_text = "n/a" if final is None else (
        f"{format_return(final)} +- {format_return(summary['final_eval_return_std'])}")
    evaluations = summary.get("evaluations") or []
    if evaluations and evaluations[-1].get("episodes_cut"):
        final_text += f" ({evaluations[-1]['episodes_cut']} episodes cut by the evaluation step cap)"
    best = summary.get("best_eval_return")
    if best is not None and best > final:
        final_text += f" (best {format_return(best)} at {summary['best_eval_env_steps']} env steps: best_policy.pt)"
    if summary["solved_at_env_steps"] is not None:
        solved = f"solved at {summary['solved_at_env_steps']} env steps ({summary['solved_at_wall_clock_s']:.1f} s)"
    elif summary["reward_threshold"] is None:
        solved = "no reward threshold"
    else:
        solved = f"not solved (threshold {summary['reward_threshold']})"
    status = summary.get("status", "completed")
    head = f"distrl summary: {summary['agent']} on {summary['env']} seed {summary['seed']} [{summary['mode']}]: "
    if status != "completed":
        error = summary.get("error") or {}
        head += f"{status.upper()} ({error.get('type', '?')}: {error.get('message', '')}); "
    return (
        f"{head}final greedy return {final_text}; {solved}; {summary['env_steps']} env steps, "
        f"{summary['learner_steps']} learner steps in {summary['wall_clock_s']:.1f} s; {summary['run_dir']}"
    )
