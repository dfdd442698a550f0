"""The environment loop: runs an actor against a dm_env environment."""

from __future__ import annotations

import time
from typing import Callable, Mapping

import dm_env

from distrl.core import Actor, Worker
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger, NullLogger

EpisodeCallback = Callable[[Mapping[str, float]], None]


class EnvironmentLoop(Worker):
    """Steps ``environment`` with ``actor``; reports return, length and steps per second.

    The loop calls ``actor.update()`` after every step when ``should_update``
    is true (the actor decides itself, by its update period, whether that
    means fetching weights or running learner steps). Counts go to the shared
    ``counter`` once per episode, so the hot loop makes no locked call per step.
    """

    def __init__(
        self,
        environment: dm_env.Environment,
        actor: Actor,
        counter: Counter | None = None,
        logger: Logger | None = None,
        should_update: bool = True,
        on_episode_end: EpisodeCallback | None = None,
        label: str = "charts",
    ) -> None:
        self._environment = environment
        self._actor = actor
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._should_update = should_update
        self._on_episode_end = on_episode_end
        self._label = label

    @property
    def counter(self) -> Counter:
        return self._counter

    def run_episode(self, max_steps: int | None = None) -> dict[str, float]:
        """Runs one episode (or ``max_steps`` steps of it) and returns its statistics.

        Returns a dict with ``episode_return`` (sum of rewards), ``episode_length``
        (environment steps), ``steps_per_second`` and ``completed`` (1.0 when the
        episode reached a LAST step, 0.0 when cut short by ``max_steps``).
        """
        start = time.perf_counter()
        environment, actor = self._environment, self._actor
        should_update = self._should_update
        timestep = environment.reset()
        actor.observe_first(timestep)
        episode_return = 0.0
        episode_length = 0
        while not timestep.last():
            if max_steps is not None and episode_length >= max_steps:
                break
            action = actor.select_action(timestep.observation)
            timestep = environment.step(action)
            actor.observe(action, timestep)
            if should_update:
                actor.update()
            episode_return += float(timestep.reward)
            episode_length += 1
        elapsed = time.perf_counter() - start
        counts = self._counter.increment(
            env_steps=episode_length, episodes=1 if timestep.last() else 0
        )
        result = {
            "episode_return": episode_return,
            "episode_length": float(episode_length),
            "steps_per_second": episode_length / max(elapsed, 1e-9),
            "completed": 1.0 if timestep.last() else 0.0,
        }
        if timestep.last():
            self._logger.write(
                {
                    f"{self._label}/episodic_return": episode_return,
                    f"{self._label}/episodic_length": episode_length,
                    f"{self._label}/SPS": result["steps_per_second"],
                },
                env_steps=int(counts.get("env_steps", 0)),
            )
        if self._on_episode_end is not None:
            self._on_episode_end(result)
        return result

    def run(self, num_episodes: int | None = None, num_steps: int | None = None) -> list[dict[str, float]]:
        """Runs until ``num_episodes`` episodes or ``num_steps`` steps, whichever comes first.

        With neither given it runs forever. ``num_steps`` is exact: the last
        episode is cut short when the budget ends inside it.
        """
        results = []
        steps = 0
        episodes = 0
        while (num_episodes is None or episodes < num_episodes) and (
            num_steps is None or steps < num_steps
        ):
            remaining = None if num_steps is None else num_steps - steps
            result = self.run_episode(max_steps=remaining)
            results.append(result)
            steps += int(result["episode_length"])
            episodes += 1
        return results
