"""The environment loops: an actor against one dm_env environment, or a batched actor against N.

``EnvironmentLoop`` is the one episode loop of the package: training in the
single-process mode, acting in a distributed env actor and greedy
evaluation all run their episodes through it.

Episode returns and the ``episode_score`` protocol: the return a loop
reports is the plain sum of the timestep rewards, unless the environment
(or any environment it wraps: ``EnvironmentWrapper`` forwards attributes)
has an ``episode_score`` attribute that is not None. Then the loop reports
that attribute, read when the episode ends, as ``episode_return``. An
environment that shapes the rewards the agent learns from (Atari's sign
clipping, ``distrl.envs.atari``) keeps the true score there, a float summing
the unshaped rewards since its last reset, so training curves and
evaluation report the game score, as gymnasium's ``RecordEpisodeStatistics``
does when it wraps the env before the reward clipping. Whether an
environment has one is decided once, when the loop is built, so a step
costs the same either way.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import dm_env

from distrl.utils.nests import index_nest, stack_nests
from distrl.core import Actor, BatchedActor, Worker
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger, NullLogger

EpisodeCallback = Callable[[Mapping[str, float]], None]


def _env_name(environment: dm_env.Environment) -> str:
    """The registry's name for ``environment`` (``ValidatingWrapper.registry_name``), else its own
    ``name``, else its class name."""
    for attribute in ("registry_name", "name"):
        name = getattr(environment, attribute, None)
        if isinstance(name, str):
            return repr(name)
    return type(environment).__name__


def _add_note(error: BaseException, note: str) -> None:
    """Says where an environment's exception came from (``BaseException.add_note``, Python 3.11+;
    the traceback still leads into the environment's own code) and marks it
    ``raised_by_environment`` (``raised_by_environment(error)``)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    try:
        error.raised_by_environment = True  # type: ignore[attr-defined]
    except AttributeError:  # An exception type with __slots__: the note still says it.
        pass


def raised_by_environment(error: BaseException) -> bool:
    """True for an exception an environment's ``reset()`` or ``step()`` raised inside a loop here
    (including the invalid values ``ValidatingWrapper`` refuses): the distributed runtime rebuilds
    the environment for those instead of ending the run (``max_env_failures``)."""
    return bool(getattr(error, "raised_by_environment", False))


class EnvironmentLoop(Worker):
    """Steps ``environment`` with ``actor``; reports return, length and steps per second.

    The loop calls ``actor.update()`` after every step when ``should_update``
    is true (the actor decides itself, by its update period, whether that
    means fetching weights or running learner steps). Counts go to the shared
    ``counter`` once per episode, so the hot loop makes no locked call per step;
    ``total_steps`` is this loop's own count, current after every step (a
    plain int another thread may read). ``should_stop``, when given, is asked
    before every step; once it returns True the episode ends there, as if
    ``max_steps`` had been reached (``completed`` 0).

    The reported return is the environment's ``episode_score`` when it has
    one (see the module docstring), else the sum of the rewards.
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
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self._environment = environment
        self._actor = actor
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._should_update = should_update
        self._on_episode_end = on_episode_end
        self._label = label
        self._should_stop = should_stop
        self._has_score = getattr(environment, "episode_score", None) is not None
        self.total_steps = 0

    @property
    def counter(self) -> Counter:
        return self._counter

    def run_episode(self, max_steps: int | None = None) -> dict[str, float]:
        """Runs one episode (or ``max_steps`` steps of it) and returns its statistics.

        Returns a dict with ``episode_return`` (the sum of the rewards, or the
        environment's ``episode_score`` when it keeps one), ``episode_length``
        (environment steps), ``steps_per_second`` and ``completed`` (1.0 when the
        episode reached a LAST step, 0.0 when cut short by ``max_steps`` or
        ``should_stop``). Episodes cut short are not logged.
        """
        start = time.perf_counter()
        environment, actor = self._environment, self._actor
        should_update, should_stop = self._should_update, self._should_stop
        try:
            timestep = environment.reset()
        except Exception as error:
            _add_note(error, f"raised by reset() of {_env_name(environment)} (after env step {self.total_steps})")
            raise
        actor.observe_first(timestep)
        episode_return = 0.0
        episode_length = 0
        while not timestep.last():
            if max_steps is not None and episode_length >= max_steps:
                break
            if should_stop is not None and should_stop():
                break
            action = actor.select_action(timestep.observation)
            try:
                timestep = environment.step(action)
            except Exception as error:
                _add_note(error, f"raised by step {episode_length + 1} of an episode of {_env_name(environment)} "
                                 f"(env step {self.total_steps + 1} of this loop)")
                raise
            actor.observe(action, timestep)
            if should_update:
                actor.update()
            episode_return += float(timestep.reward)
            episode_length += 1
            self.total_steps += 1
        elapsed = time.perf_counter() - start
        if self._has_score:
            episode_return = float(environment.episode_score)
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

        With neither given it runs until ``should_stop`` (or forever).
        ``num_steps`` is exact: the last episode is cut short when the budget
        ends inside it.
        """
        results = []
        steps = 0
        episodes = 0
        should_stop = self._should_stop
        while (num_episodes is None or episodes < num_episodes) and (
            num_steps is None or steps < num_steps
        ) and (should_stop is None or not should_stop()):
            remaining = None if num_steps is None else num_steps - steps
            result = self.run_episode(max_steps=remaining)
            results.append(result)
            steps += int(result["episode_length"])
            episodes += 1
        return results


class VectorEnvironmentLoop(Worker):
    """Steps N environments in lockstep with one ``BatchedActor``.

    Each vector step makes one batched ``select_actions`` call on the N
    current observations, steps every environment with its action, calls
    ``observe(i, ...)`` for each, resets every environment whose step was
    LAST (calling ``observe_first(i, ...)`` with the new FIRST timestep, so
    the next vector step already acts in the new episode) and finally calls
    ``actor.update()`` once when ``should_update``.

    Episodes carry over between ``run`` calls. Each finished episode is
    reported as ``EnvironmentLoop`` reports one: ``{label}/episodic_return``,
    ``{label}/episodic_length`` and ``{label}/SPS`` to the logger, and the
    result dict (``episode_return``, ``episode_length``, ``steps_per_second``,
    ``completed`` = 1.0) to ``on_episode_end``. ``steps_per_second`` is the
    loop's throughput over all N environments while that episode ran. The
    counter gets ``env_steps`` (N per vector step, so every env step is
    counted exactly) and ``episodes`` once per vector step. As in
    ``EnvironmentLoop``, an environment's ``episode_score``, when it has one
    (see the module docstring), is reported as its episode's return.
    """

    def __init__(
        self,
        environments: Sequence[dm_env.Environment],
        actor: BatchedActor,
        counter: Counter | None = None,
        logger: Logger | None = None,
        should_update: bool = True,
        on_episode_end: EpisodeCallback | None = None,
        label: str = "charts",
    ) -> None:
        if not environments:
            raise ValueError("VectorEnvironmentLoop needs at least one environment")
        self._environments = list(environments)
        self._actor = actor
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._should_update = should_update
        self._on_episode_end = on_episode_end
        self._label = label
        num_envs = len(self._environments)
        self._observations: list | None = None  # None until the first run() resets everything.
        self._returns = [0.0] * num_envs
        self._lengths = [0] * num_envs
        self._starts = [0.0] * num_envs
        self._has_score = [
            getattr(environment, "episode_score", None) is not None
            for environment in self._environments
        ]

    @property
    def counter(self) -> Counter:
        return self._counter

    @property
    def num_envs(self) -> int:
        return len(self._environments)

    def _reset(self, index: int) -> None:
        try:
            timestep = self._environments[index].reset()
        except Exception as error:
            _add_note(error, f"raised by reset() of environment {index} ({_env_name(self._environments[index])}) "
                             f"of a vector loop")
            raise
        self._actor.observe_first(index, timestep)
        self._observations[index] = timestep.observation
        self._returns[index] = 0.0
        self._lengths[index] = 0
        self._starts[index] = time.perf_counter()

    def run(self, num_steps: int) -> list[dict[str, float]]:
        """Runs ceil(num_steps / N) vector steps, i.e. at least ``num_steps``
        env steps summed over the N environments (at most N - 1 more), and
        returns the results of the episodes that finished meanwhile."""
        environments, actor = self._environments, self._actor
        num_envs = len(environments)
        if self._observations is None:
            self._observations = [None] * num_envs
            for index in range(num_envs):
                self._reset(index)
        observations, returns, lengths = self._observations, self._returns, self._lengths
        results: list[dict[str, float]] = []
        for _ in range(-(-num_steps // num_envs)):
            actions = actor.select_actions(stack_nests(observations))
            finished = []
            for index, environment in enumerate(environments):
                action = index_nest(actions, index)
                try:
                    timestep = environment.step(action)
                except Exception as error:
                    _add_note(error, f"raised by step {lengths[index] + 1} of an episode of environment {index} "
                                     f"({_env_name(environment)}) of a vector loop")
                    raise
                actor.observe(index, action, timestep)
                returns[index] += float(timestep.reward)
                lengths[index] += 1
                if timestep.last():
                    finished.append(index)
                else:
                    observations[index] = timestep.observation
            counts = self._counter.increment(env_steps=num_envs, episodes=len(finished))
            for index in finished:
                results.append(self._report(index, int(counts.get("env_steps", 0))))
                self._reset(index)
            if self._should_update:
                actor.update()
        return results

    def _report(self, index: int, env_steps: int) -> dict[str, float]:
        length = self._lengths[index]
        elapsed = time.perf_counter() - self._starts[index]
        if self._has_score[index]:
            episode_return = float(self._environments[index].episode_score)
        else:
            episode_return = self._returns[index]
        result = {
            "episode_return": episode_return,
            "episode_length": float(length),
            "steps_per_second": length * len(self._environments) / max(elapsed, 1e-9),
            "completed": 1.0,
        }
        self._logger.write(
            {
                f"{self._label}/episodic_return": result["episode_return"],
                f"{self._label}/episodic_length": length,
                f"{self._label}/SPS": result["steps_per_second"],
            },
            env_steps=env_steps,
        )
        if self._on_episode_end is not None:
            self._on_episode_end(result)
        return result
