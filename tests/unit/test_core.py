"""The contracts of ``distrl.core`` and ``distrl.agents.builder`` that the runtimes rely on."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pytest

from distrl.agents import a2c, ddpg, dqn
from distrl.agents.builder import BatchedPolicy, Builder, Policy
from distrl.core import Actor, BatchedActor, Learner, Saveable, VariableSource, Worker
from distrl.types import Versioned


class Source(VariableSource):
    def __init__(self, version: int) -> None:
        self.version = version

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        return Versioned(self.version, {name: {} for name in names})


def test_get_newer_variables_returns_a_newer_version_or_raises_when_it_cannot_wait():
    assert Source(3).get_newer_variables(["a"], than_version=2).version == 3
    with pytest.raises(RuntimeError, match="has version 3, not newer than 3"):
        Source(3).get_newer_variables(["a"], than_version=3)


class CountingLearner(Learner):
    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> Mapping[str, float]:
        self.steps += 1
        return {}

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        return Versioned(self.steps, {})

    def save(self) -> Mapping[str, Any]:
        return {"steps": self.steps}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.steps = state["steps"]


def test_learner_run_makes_that_many_steps_and_its_version_is_its_step_count():
    learner = CountingLearner()
    learner.run(5)
    assert learner.steps == learner.get_variables([]).version == learner.save()["steps"] == 5


@pytest.mark.parametrize("interface", [Actor, BatchedActor, VariableSource, Saveable, Worker, Learner, Builder])
def test_interfaces_cannot_be_used_without_their_methods(interface):
    with pytest.raises(TypeError, match="abstract"):
        interface()


@pytest.mark.parametrize(
    "agent, names", [(dqn, ("q_network",)), (ddpg, ("policy",)), (a2c, ("policy",))]
)
def test_every_builder_declares_its_published_variables(agent, names):
    builder = agent.Builder(agent.Config())
    assert builder.variable_names == names
    assert builder.with_num_actors(1).variable_names == names


def test_builder_defaults():
    builder = dqn.Builder(dqn.Config())
    assert builder.with_num_actors(4) is builder
    assert builder.envs_per_actor == 1 and not builder.synchronous
    class SingleEnvironmentBuilder(Builder):  # an agent that acts in one environment at a time
        variable_names = ("policy",)
        make_replay_tables = make_adder = make_policy = make_actor = make_learner = None

    with pytest.raises(NotImplementedError, match="SingleEnvironmentBuilder does not implement make_batched_actor"):
        SingleEnvironmentBuilder().make_batched_actor(None, None, None, [])
    adders = builder.make_adders(client=None, num_envs=3)
    assert len(adders) == 3 and len({id(adder) for adder in adders}) == 3
    assert a2c.Builder(a2c.Config()).actor_exploration(1, 4) is None


def test_policies_report_no_exploration_by_default():
    class Constant(Policy):
        def __call__(self, observation: Any) -> Any:
            return 0

    class ConstantBatched(BatchedPolicy):
        def select_actions(self, observations: Any) -> tuple[Any, Any]:
            return observations, observations

    assert Constant().exploration_state() == ConstantBatched().exploration_state() == {"kind": "none"}
