"""The one protocol every framework in ``bench peers`` runs under.

A task is an agent on a gymnasium environment with a solve threshold. A run
trains with the framework's own loop and, every ``eval_every`` env steps,
plays ``EVAL_EPISODES`` greedy episodes whose start states are fixed for the
run seed: the same at every evaluation, so evaluations compare like with
like, and the same for every framework (distrl's evaluation stream), so a
seed whose start states are hard is hard for all.
The run is solved at the first evaluation whose mean return reaches the
threshold; time to solve is the wall-clock from the start of training to the
end of that evaluation minus the time spent evaluating, because a
single-process trainer pauses while it evaluates and the frameworks evaluate
at different speeds. distrl's distributed mode does not pause: its driver
evaluates while the actors and the learner go on, so its time to solve is
the wall-clock to the start of the solving evaluation, just after the weights it
evaluates were taken (its earlier evaluations shared the machine with
training, and their cost stays in). Every framework runs in its own process, with one torch
thread, so none inherits another's state.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np

#: Greedy episodes per evaluation.
EVAL_EPISODES = 10


@dataclasses.dataclass(frozen=True)
class Task:
    """One (agent, environment) pair of the comparison and the peers that take part."""

    agent: str
    env_id: str
    threshold: float
    eval_every: int
    max_env_steps: int
    peers: tuple[str, ...]
    distrl_env: str = ""
    """distrl's name of the environment when it is not ``gym:<env_id>`` (``make_environment``);
    evaluations then still play ``env_id``'s start states (the environment must be ``env_id``
    underneath, as ``distrl.bench.costly_env:costly_cartpole`` is CartPole-v1)."""

    @property
    def distrl_env_name(self) -> str:
        """The environment name distrl trains on."""
        return self.distrl_env or f"gym:{self.env_id}"


#: The tasks of issue-15's protocol: evaluation every 5,000 env steps on CartPole, 2,000 on Pendulum.
#: ``dqn-costly-cartpole`` is distrl only: CartPole-v1 whose steps cost as much CPU as half a DQN update
#: (``distrl.bench.costly_env``), to compare the distributed mode with the single process where
#: acting is a real share of the work.
TASKS = {
    "dqn-cartpole": Task("dqn", "CartPole-v1", 475.0, 5_000, 50_000, ("sb3",)),
    "a2c-cartpole": Task("a2c", "CartPole-v1", 475.0, 5_000, 100_000, ("sb3",)),
    "ddpg-pendulum": Task("ddpg", "Pendulum-v1", -200.0, 2_000, 20_000, ("tianshou", "sb3")),
    "dqn-costly-cartpole": Task("dqn", "CartPole-v1", 475.0, 5_000, 50_000, (),
                                distrl_env="distrl.bench.costly_env:costly_cartpole"),
}

#: What ``bench peers`` runs without ``--tasks``: the tasks with peers.
PEER_TASKS = tuple(name for name, task in TASKS.items() if task.peers)


def eval_stream_seed(run_seed: int) -> int:
    """The seed of a run's evaluation episodes: distrl's own (``derive_seed(seed, "eval")``), so
    every framework meets the same start states for a given run seed."""
    from distrl.utils.seeding import derive_seed

    return derive_seed(run_seed, "eval")


def reset_to_start(env: Any, run_seed: int, episode: int) -> Any:
    """Resets gymnasium ``env`` to the start state of evaluation episode ``episode`` of the run:
    the ``episode``-th reset after one seeded with ``eval_stream_seed(run_seed)``, as distrl's
    evaluation environment meets them (a seeded first reset, unseeded ones after; the tasks here
    draw randomness only on reset). Returns the observation."""
    observation, _ = env.reset(seed=eval_stream_seed(run_seed))
    for _ in range(episode):
        observation, _ = env.reset()
    return observation


def greedy_returns(env_id: str, act: Callable[[np.ndarray], Any], run_seed: int) -> list[float]:
    """Undiscounted returns of ``EVAL_EPISODES`` episodes of ``act`` (observation -> action) on a
    fresh ``env_id`` from the run's evaluation start states (``reset_to_start``)."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    try:
        observation, _ = env.reset(seed=eval_stream_seed(run_seed))
        for episode in range(EVAL_EPISODES):
            if episode:
                observation, _ = env.reset()
            total, done = 0.0, False
            while not done:
                observation, reward, terminated, truncated, _ = env.step(act(observation))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns


class SolveClock:
    """Training time with evaluations taken out, and the evaluations' record.

    ``start()`` when training starts; wrap each evaluation in ``evaluating()``;
    ``record(env_steps, mean_return)`` after it. ``solved`` holds the first
    evaluation at or above the threshold.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.evaluations: list[dict[str, float]] = []
        self.solved: dict[str, float] | None = None
        self._started = 0.0
        self._evaluating_s = 0.0

    def start(self) -> None:
        self._started = time.monotonic()

    def evaluating(self) -> "_Paused":
        return _Paused(self)

    def training_seconds(self) -> float:
        return time.monotonic() - self._started - self._evaluating_s

    def record(self, env_steps: int, mean_return: float) -> bool:
        """Notes an evaluation; returns True when it is the first to reach the threshold."""
        entry = {"env_steps": int(env_steps), "train_s": round(self.training_seconds(), 3),
                 "return_mean": float(mean_return)}
        self.evaluations.append(entry)
        if self.solved is None and mean_return >= self.threshold:
            self.solved = entry
            return True
        return False


class _Paused:
    def __init__(self, clock: SolveClock) -> None:
        self._clock = clock

    def __enter__(self) -> None:
        self._entered = time.monotonic()

    def __exit__(self, *exc: Any) -> None:
        self._clock._evaluating_s += time.monotonic() - self._entered


def median_or_none(values: list[float | None]) -> float | None:
    """The median with an unsolved run (None) counted as slower than every solved one:
    None when half or more of the runs did not solve."""
    ranked = sorted(values, key=lambda v: (v is None, v if v is not None else 0.0))
    if not ranked:
        return None
    n = len(ranked)
    middle = ranked[(n - 1) // 2: n // 2 + 1]
    if any(v is None for v in middle):
        return None
    return float(np.mean(middle))
