"""CartPole-v1 with the per-step CPU cost of a heavier simulator: where the distributed mode pays.

A CartPole-v1 step costs about 10 us, so a DQN run on it spends about 85% of
its time in learner updates. The distributed mode can only move the other
15%, the acting, to another core, and on the 2-vCPU machine of BENCHMARKS.md
that does not cover the cost of the Ray runtime ("Distributed against the
single process"). The simulators users bring cost far more per step: MuJoCo
humanoids, physics engines with contacts, emulators that render (0.1-20 ms).
``costly_cartpole`` is CartPole-v1 whose steps each take at least
``STEP_COST_S`` of CPU (CartPole's own 10 us included), so the same DQN run
spends about half its time acting, the share at which moving the acting off
the learner's core should show.

The cost is a busy wait, not a sleep: a simulator occupies its core, and a
sleeping step would leave the core free to the learner in both modes. The
wait is Python and holds the GIL, which a simulator written in C would
release; in an env actor it therefore also delays the actor's other Python
threads, so it if anything understates what the distributed mode gains.
Name it anywhere an environment is named:
``--env distrl.bench.costly_env:costly_cartpole``.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium

from distrl.envs.gym_adapter import GymnasiumToDmEnv

#: CPU seconds each step of ``costly_cartpole`` takes at least (CartPole-v1's own included): about as long as
#: half a DQN update of batch 64 on one CPU thread here, so acting is about half of the debug mode's
#: work at DQN's 0.5 updates per env step.
STEP_COST_S = 0.0005


class SimulatorCost(gymnasium.Wrapper):
    """Makes every ``step`` of ``env`` take at least ``step_cost_s`` seconds of CPU (busy wait).

    Observations, rewards and episode ends are ``env``'s own; only the time
    changes. ``reset`` costs nothing extra.

    Raises:
        ValueError: ``step_cost_s`` is negative or not finite.
    """

    def __init__(self, env: gymnasium.Env, step_cost_s: float):
        if not 0.0 <= step_cost_s < float("inf"):
            raise ValueError(f"SimulatorCost.step_cost_s must be a finite number >= 0, got {step_cost_s!r}")
        super().__init__(env)
        self.step_cost_s = float(step_cost_s)

    def step(self, action: Any):
        deadline = time.perf_counter() + self.step_cost_s
        result = self.env.step(action)
        while time.perf_counter() < deadline:
            pass
        return result


def costly_cartpole(seed: int) -> GymnasiumToDmEnv:
    """CartPole-v1 (its 500-step ``TimeLimit`` included) whose steps each take at least
    ``STEP_COST_S`` of CPU time, as a ``dm_env.Environment`` seeded with ``seed`` like ``gym:CartPole-v1``."""
    return GymnasiumToDmEnv(SimulatorCost(gymnasium.make("CartPole-v1"), STEP_COST_S), seed=seed)
