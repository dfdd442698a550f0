"""The Builder interface: how an agent turns specs and networks into components.

The runtime (single process or Ray) asks the builder for each piece and wires
them together; the builder never knows which runtime is calling it, and the
runtime never guesses an agent fact: which weights actors pull
(``variable_names``), how actor i of N explores (``actor_exploration``), how
many environments an actor steps (``envs_per_actor``), whether actors wait
for every new version (``synchronous``), the replay ratio
(``updates_per_env_step``) and how stale data the learner accepts
(``max_policy_lag``) are all the builder's to say; the last two set how often
the distributed learner publishes its weights.

Several environments per actor. ``Builder.envs_per_actor`` (default 1) says
how many environments one actor steps. When it is above 1 the runtime builds
N = ``envs_per_actor`` environments and one adder per environment
(``make_adders``; off-policy agents give the lanes of one vectorised adder), asks
``make_policy`` for a ``BatchedPolicy`` and ``make_batched_actor`` for a
``BatchedActor`` over them, and runs a ``VectorEnvironmentLoop`` (one batched
inference per vector step). Builders that keep the default of 1 need not
implement ``make_batched_actor``.
"""

from __future__ import annotations

import abc
from typing import Any, Iterator

import torch

from distrl.adders.base import Adder
from distrl.core import Actor, BatchedActor, Learner, VariableSource
from distrl.replay.client import ReplayClient
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.types import SampleBatch
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger


class Policy(abc.ABC):
    """Maps one observation to one action; may keep per-episode state (noise)."""

    @abc.abstractmethod
    def __call__(self, observation: Any) -> Any:
        """Returns the action for a single observation."""

    def reset(self) -> None:
        """Called at the start of every episode (resets exploration noise)."""

    def exploration_state(self) -> dict[str, Any]:
        """How this policy explores now, JSON-friendly, for run summaries
        (e.g. ``{"kind": "epsilon_greedy", "epsilon": 0.05, ...}``);
        ``{"kind": "none"}`` for a policy that does not explore."""
        return {"kind": "none"}

    def get_state(self) -> dict[str, Any]:
        """What the policy carries between steps (schedules, random generators), for checkpoints;
        ``{}`` for a stateless policy (the greedy ones)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores ``get_state`` output."""


class BatchedPolicy(abc.ABC):
    """Maps N stacked observations to N actions (one batched inference)."""

    @abc.abstractmethod
    def select_actions(self, observations: Any) -> tuple[Any, Any]:
        """Returns ``(actions, behaviour_actions)`` for observations with a leading axis N.

        ``actions`` go to the environments; ``behaviour_actions`` are what the
        adders record as the action taken, e.g. a Gaussian policy's unclipped
        sample, whose log-probability the learner evaluates, while the
        environments receive it clipped to the action bounds. Both may be
        the same object.
        """

    def reset_env(self, index: int) -> None:
        """Called when environment ``index`` starts an episode (per-stream state such as noise)."""

    def exploration_state(self) -> dict[str, Any]:
        """As ``Policy.exploration_state``."""
        return {"kind": "none"}


class Builder(abc.ABC):
    """Creates an agent's replay tables, adder, actor, learner and policies."""

    #: Items per learner batch (transitions, or segments for on-policy agents).
    batch_size: int

    #: Environments stepped in lockstep by one actor (see the module docstring).
    envs_per_actor: int = 1

    #: True when each actor, after every round of data it inserts, waits for
    #: the weights that round trains (synchronous on-policy learning); the
    #: distributed runtime then publishes weights after every learner step.
    synchronous: bool = False

    #: Learner updates per env step at the replay ratio the agent's rate limiter
    #: holds (samples_per_insert / batch_size for replay agents); None where no
    #: limiter sets one (on-policy agents). The distributed runtime sizes its
    #: default weight-publish period from it.
    updates_per_env_step: float | None = None

    #: Most learner steps the weights that acted in a batch may trail the learner
    #: (older data is dropped, e.g. A2C's ``max_policy_lag``); None: any lag. The
    #: distributed runtime publishes weights at least that often, or actors would
    #: only produce data the learner drops.
    max_policy_lag: int | None = None

    @property
    @abc.abstractmethod
    def variable_names(self) -> tuple[str, ...]:
        """The names of the networks actors pull from the variable source (and the
        learner publishes), e.g. ``("q_network",)``; a class attribute will do."""

    def actor_exploration(self, index: int, num_actors: int) -> float | None:
        """The exploration level actor ``index`` of ``num_actors`` acts with, passed to
        ``make_policy(exploration=...)``; None: the config's own (the default for
        every actor). The single-process mode asks for actor 0 of 1."""
        return None

    def check_budget(self, max_env_steps: int) -> None:
        """Refuses settings under which this agent cannot learn in a run of ``max_env_steps``
        env steps (all actors together; the builder is sized by ``with_num_actors``).

        The runtimes call it before training starts, so a warm-up longer than the
        budget or a statistic over a batch of one fails at once instead of
        running to the end without learning. Raises ``ConfigError`` naming the
        fields; the default accepts every budget.
        """

    def with_num_actors(self, num_actors: int) -> "Builder":
        """This builder for a run in which ``num_actors`` actors feed one learner.

        The default is this builder unchanged; an agent whose learner batch
        spans every actor's environments (synchronous A2C) returns one sized
        for them. The single-process mode has one actor.
        """
        return self

    @abc.abstractmethod
    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """Returns the agent's replay tables; the first one feeds the learner."""

    @abc.abstractmethod
    def make_adder(self, client: ReplayClient, networks: Any = None) -> Adder:
        """Returns the adder an actor writes through.

        ``networks`` are that actor's acting networks (the ones its variable
        client keeps current; None where there are none), for adders that
        compute per-item values as they insert, e.g. Ape-X's initial
        priorities (Acme's ``make_adder`` takes the policy for the same reason).
        """

    def make_adders(self, client: ReplayClient, num_envs: int, networks: Any = None) -> list[Adder]:
        """The adders of one actor's ``num_envs`` environments, environment i
        writing through the i-th; the default makes ``make_adder(client, networks)`` each."""
        return [self.make_adder(client, networks) for _ in range(num_envs)]

    @abc.abstractmethod
    def make_policy(
        self, networks: Any, evaluation: bool, seed: int, exploration: float | None = None
    ) -> Policy:
        """Returns an acting policy over ``networks``.

        ``evaluation`` selects the greedy/deterministic policy; ``exploration``
        is the level from ``actor_exploration`` (epsilon for DQN, a noise
        scale for DDPG; None: the config's own).
        """

    @abc.abstractmethod
    def make_actor(
        self, policy: Policy, networks: Any, variable_source: VariableSource | None, adder: Adder | None
    ) -> Actor:
        """Returns an actor running ``policy`` whose ``networks`` follow ``variable_source``."""

    def make_batched_actor(
        self,
        policy: BatchedPolicy,
        networks: Any,
        variable_source: VariableSource | None,
        adders: list[Adder],
    ) -> BatchedActor:
        """Returns a ``BatchedActor`` for ``len(adders)`` environments, environment i
        writing through ``adders[i]``; ``policy`` comes from ``make_policy(evaluation=False)``.

        Required when ``envs_per_actor > 1``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement make_batched_actor, so it cannot run "
            f"{self.envs_per_actor} environments per actor"
        )

    @abc.abstractmethod
    def make_learner(
        self,
        networks: Any,
        dataset: Iterator[SampleBatch],
        replay_client: ReplayClient | None,
        counter: Counter,
        logger: Logger,
        device: torch.device,
    ) -> Learner:
        """Returns the learner consuming ``dataset`` (one batch per ``step()``)."""
