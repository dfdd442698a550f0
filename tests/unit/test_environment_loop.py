"""The environment loops: EnvironmentLoop (one environment) and VectorEnvironmentLoop (N in lockstep)."""

from __future__ import annotations

from typing import Any

import dm_env
import numpy as np
import pytest

from distrl.core import Actor, BatchedActor
from distrl.environment_loop import EnvironmentLoop, VectorEnvironmentLoop, raised_by_environment
from distrl.envs.fakes import FakeEnvironment
from distrl.utils.counting import Counter
from distrl.utils.loggers import BufferLogger

# ---------------------------------------------------------------------------
# The vector environment loop.


class RecordingBatchedActor(BatchedActor):
    """Acts 0 everywhere and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.batch_sizes: list[int] = []

    def select_actions(self, observations: Any) -> Any:
        self.batch_sizes.append(len(observations))
        return np.zeros(len(observations), dtype=np.int64)

    def observe_first(self, index: int, timestep: dm_env.TimeStep) -> None:
        assert timestep.first()
        self.calls.append(("first", index))

    def observe(self, index: int, action: Any, next_timestep: dm_env.TimeStep) -> None:
        self.calls.append(("step", index, float(next_timestep.reward), next_timestep.last()))

    def update(self, wait: bool = False) -> None:
        self.calls.append(("update",))


def test_vector_loop_counts_and_reports_episodes():
    # Episode lengths 3 and 4: returns 1+2+3 = 6 and 1+2+3+4 = 10.
    environments = [FakeEnvironment(3), FakeEnvironment(4, terminate=False)]
    actor, logger, counter = RecordingBatchedActor(), BufferLogger(), Counter()
    ended: list[dict] = []
    loop = VectorEnvironmentLoop(environments, actor, counter, logger, on_episode_end=ended.append)
    results = loop.run(num_steps=20)  # 10 vector steps.
    assert counter.get("env_steps") == 20
    assert actor.batch_sizes == [2] * 10
    # env 0 ends at vector steps 3, 6, 9; env 1 at 4 and 8.
    assert [r["episode_return"] for r in results] == [6.0, 10.0, 6.0, 10.0, 6.0]
    assert [r["episode_length"] for r in results] == [3.0, 4.0, 3.0, 4.0, 3.0]
    assert all(r["completed"] == 1.0 and r["steps_per_second"] > 0 for r in results)
    assert ended == results
    assert counter.get("episodes") == 5
    rows = logger.drain()
    assert [row[0]["charts/episodic_return"] for row in rows] == [6, 10, 6, 10, 6]
    assert [row[1] for row in rows] == [6, 8, 12, 16, 18]  # env_steps when each episode ended.
    assert set(rows[0][0]) == {"charts/episodic_return", "charts/episodic_length", "charts/SPS"}
    # Every env is reset after its LAST, before the next action is chosen.
    firsts = [c[1] for c in actor.calls if c[0] == "first"]
    assert firsts == [0, 1, 0, 1, 0, 1, 0]  # initial resets, then after steps 3, 4, 6, 8, 9.
    assert sum(1 for c in actor.calls if c[0] == "update") == 10
    # Episodes carry over between run() calls; num_steps rounds up to whole vector steps.
    results = loop.run(num_steps=3)  # 2 vector steps: steps 11 and 12.
    assert counter.get("env_steps") == 24
    assert [r["episode_return"] for r in results] == [6.0, 10.0]
    assert [e.actions.count(0) for e in environments] == [12, 12]


def test_vector_loop_without_update():
    actor = RecordingBatchedActor()
    loop = VectorEnvironmentLoop([FakeEnvironment(2)] * 1, actor, should_update=False)
    loop.run(num_steps=5)
    assert loop.counter.get("env_steps") == 5
    assert not any(c[0] == "update" for c in actor.calls)


# ---------------------------------------------------------------------------
# The single-environment loop (training, distributed acting and evaluation all use it).


class RecordingActor(Actor):
    """Acts 1 everywhere and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def select_action(self, observation: Any) -> Any:
        self.calls.append(("select",))
        return np.int64(1)

    def observe_first(self, timestep: dm_env.TimeStep) -> None:
        assert timestep.first()
        self.calls.append(("first",))

    def observe(self, action: Any, next_timestep: dm_env.TimeStep) -> None:
        self.calls.append(("observe", int(action), float(next_timestep.reward), next_timestep.last()))

    def update(self, wait: bool = False) -> None:
        self.calls.append(("update",))


def test_episode_calls_the_actor_in_order_and_reports_the_episode():
    actor, logger, counter = RecordingActor(), BufferLogger(), Counter()
    ended: list[dict] = []
    loop = EnvironmentLoop(FakeEnvironment(3), actor, counter, logger, on_episode_end=ended.append)
    result = loop.run_episode()
    assert actor.calls == [
        ("first",),
        ("select",), ("observe", 1, 1.0, False), ("update",),
        ("select",), ("observe", 1, 2.0, False), ("update",),
        ("select",), ("observe", 1, 3.0, True), ("update",),
    ]
    assert (result["episode_return"], result["episode_length"], result["completed"]) == (6.0, 3.0, 1.0)
    assert ended == [result]
    assert (counter.get("env_steps"), counter.get("episodes"), loop.total_steps) == (3, 1, 3)
    ((metrics, env_steps),) = logger.drain()
    assert env_steps == 3 and metrics["charts/episodic_return"] == 6.0 and metrics["charts/episodic_length"] == 3


def test_cut_episodes_count_steps_but_are_not_logged_as_episodes():
    logger, counter = BufferLogger(), Counter()
    loop = EnvironmentLoop(FakeEnvironment(5), RecordingActor(), counter, logger)
    result = loop.run_episode(max_steps=2)
    assert (result["episode_length"], result["completed"]) == (2.0, 0.0)
    assert (counter.get("env_steps"), counter.get("episodes")) == (2, 0)
    assert logger.drain() == []


def test_run_is_exact_in_steps_and_counts_episodes():
    loop = EnvironmentLoop(FakeEnvironment(3), RecordingActor())
    results = loop.run(num_steps=7)
    assert [r["episode_length"] for r in results] == [3.0, 3.0, 1.0]
    assert loop.total_steps == 7
    results = loop.run(num_episodes=2)
    assert [r["completed"] for r in results] == [1.0, 1.0] and loop.total_steps == 13


def test_should_stop_ends_the_episode_before_the_next_step_and_ends_run():
    actor = RecordingActor()
    seen: list[int] = []

    def should_stop() -> bool:
        seen.append(loop.total_steps)
        return loop.total_steps >= 4

    loop = EnvironmentLoop(FakeEnvironment(3), actor, should_stop=should_stop)
    results = loop.run()  # No budget: only should_stop ends it.
    assert loop.total_steps == 4
    assert [(r["episode_length"], r["completed"]) for r in results] == [(3.0, 1.0), (1.0, 0.0)]
    assert sum(1 for call in actor.calls if call[0] == "select") == 4


def test_without_should_update_the_actor_is_never_updated():
    actor = RecordingActor()
    EnvironmentLoop(FakeEnvironment(2), actor, should_update=False).run(num_episodes=3)
    assert not any(call == ("update",) for call in actor.calls)


# ---------------------------------------------------------------------------
# The episode_score protocol: an environment that clips or shapes its rewards
# keeps the true score, and the loops report it as the episode return.

from distrl.envs.validation import ValidatingWrapper  # noqa: E402
from distrl.envs.wrappers import EnvironmentWrapper  # noqa: E402


class ScoredEnvironment(EnvironmentWrapper):
    """FakeEnvironment whose game score is 100x its rewards (as if the rewards were clipped)."""

    def __init__(self, environment: dm_env.Environment) -> None:
        super().__init__(environment)
        self.episode_score = 0.0

    def reset(self) -> dm_env.TimeStep:
        self.episode_score = 0.0
        return self._environment.reset()

    def step(self, action: Any) -> dm_env.TimeStep:
        timestep = self._environment.step(action)
        if timestep.first():
            self.episode_score = 0.0
        else:
            self.episode_score += 100.0 * float(timestep.reward)
        return timestep


def test_loop_reports_the_episode_score_through_wrappers():
    # The score is found through a wrapper (ValidatingWrapper forwards attributes).
    environment = ValidatingWrapper(ScoredEnvironment(FakeEnvironment(3)), "scored")
    logger = BufferLogger()
    loop = EnvironmentLoop(environment, RecordingActor(), logger=logger)
    results = loop.run(num_episodes=2)
    assert [r["episode_return"] for r in results] == [600.0, 600.0]  # not 1 + 2 + 3
    assert [row[0]["charts/episodic_return"] for row in logger.drain()] == [600.0, 600.0]
    # An episode cut short reports the score so far.
    assert loop.run_episode(max_steps=2)["episode_return"] == 300.0


def test_loop_sums_rewards_without_a_score_or_with_a_none_score():
    environment = ScoredEnvironment(FakeEnvironment(3))
    environment.episode_score = None  # None means: no score, sum the rewards.
    loop = EnvironmentLoop(environment, RecordingActor())
    assert loop.run_episode()["episode_return"] == 6.0
    assert EnvironmentLoop(FakeEnvironment(3), RecordingActor()).run_episode()["episode_return"] == 6.0


def test_vector_loop_reports_each_environments_score_before_its_reset():
    environments = [ScoredEnvironment(FakeEnvironment(3)), FakeEnvironment(4, terminate=False)]
    logger = BufferLogger()
    loop = VectorEnvironmentLoop(environments, RecordingBatchedActor(), logger=logger)
    results = loop.run(num_steps=16)  # 8 vector steps: env 0 ends at 3 and 6, env 1 at 4 and 8.
    assert [r["episode_return"] for r in results] == [600.0, 10.0, 600.0, 10.0]
    assert [row[0]["charts/episodic_return"] for row in logger.drain()] == [600.0, 10.0, 600.0, 10.0]


class _BrokenEnvironment(FakeEnvironment):
    """Raises on its ``fail_at``-th step (or on reset when ``fail_at`` is 0)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(5)
        self.fail_at, self.steps = fail_at, 0

    def reset(self) -> dm_env.TimeStep:
        if self.fail_at == 0:
            raise OSError("simulator did not start")
        return super().reset()

    def step(self, action: Any) -> dm_env.TimeStep:
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("simulator crashed")
        return super().step(action)


def test_an_environments_own_exception_is_marked_and_says_where_it_came_from():
    """The distributed runtime rebuilds an environment for these (raised_by_environment) and ends
    the run for anything else, e.g. an actor's own bug."""
    loop = EnvironmentLoop(_BrokenEnvironment(fail_at=2), RecordingActor())
    with pytest.raises(RuntimeError, match="simulator crashed") as step_error:
        loop.run_episode()
    assert raised_by_environment(step_error.value)
    assert any("raised by step 2 of an episode" in note for note in step_error.value.__notes__)
    with pytest.raises(OSError) as reset_error:
        EnvironmentLoop(_BrokenEnvironment(fail_at=0), RecordingActor()).run_episode()
    assert raised_by_environment(reset_error.value)
    vector = VectorEnvironmentLoop([FakeEnvironment(5), _BrokenEnvironment(fail_at=1)], RecordingBatchedActor())
    with pytest.raises(RuntimeError) as vector_error:
        vector.run(num_steps=4)
    assert raised_by_environment(vector_error.value)

    class ActorBug(RecordingActor):
        def select_action(self, observation: Any) -> Any:
            raise ValueError("actor bug")

    with pytest.raises(ValueError) as actor_error:
        EnvironmentLoop(FakeEnvironment(3), ActorBug()).run_episode()
    assert not raised_by_environment(actor_error.value)
