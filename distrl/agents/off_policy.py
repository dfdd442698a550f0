"""What off-policy agents on n-step transition replay share: replay fields and a builder.

DQN and DDPG differ in networks, policies and losses; they store and replay
experience the same way (Acme's DQN and D4PG builders, Ape-X): an
``NStepTransitionAdder`` per environment, one table with a
samples-per-insert rate limiter, a feed-forward actor that pulls its
network by version. ``OffPolicyConfig`` holds those fields once (agents
subclass it and add their own) and ``OffPolicyBuilder`` builds those parts
once (agents subclass it and add networks, policies and the learner).

An actor stepping N > 1 environments (``OffPolicyConfig.envs_per_actor``,
acting through the agent's batched policy in a ``BatchedFeedForwardActor``,
``make_batched_actor``) writes through the N lanes of one
``VectorNStepTransitionAdder``: the environments step in lockstep, so it
records each vector step into arrays and forms the transitions of all N
environments a block at a time (no transition mixes two environments'
steps), inserting N x ``adder_batch_size`` transitions per call instead of
N calls. The rate limiter's window is sized for that insert batch.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from torch import nn

from distrl.adders.base import Adder
from distrl.adders.nstep import NStepTransitionAdder
from distrl.adders.vector_nstep import VectorNStepTransitionAdder
from distrl.agents.actors import BatchedFeedForwardActor, FeedForwardActor
from distrl.agents.builder import BatchedPolicy, Builder, Policy
from distrl.core import Actor, BatchedActor, VariableSource
from distrl.replay.client import ReplayClient
from distrl.replay.rate_limiters import SampleToInsertRatio
from distrl.replay.samplers import Sampler, UniformSampler
from distrl.replay.table import Table
from distrl.specs import EnvironmentSpec
from distrl.types import Transition
from distrl.utils.config import doc, field_docs, in_unit_interval, non_negative, positive, require
from distrl.variables.client import VariableClient

#: Name of the one transition table of an off-policy agent.
REPLAY_TABLE = "transitions"


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig:
    """The replay and acting fields every off-policy agent config has (validated here).

    An agent whose tuned default differs redeclares the field with
    ``OffPolicyConfig.field_with_default(name, default)``, which keeps this doc line.
    """

    batch_size: int = doc(64, "Transitions per learner update.")
    discount: float = doc(0.99, "Agent discount gamma applied per environment step.")
    n_step: int = doc(3, "Steps summed into each transition's return before bootstrapping.")
    max_replay_size: int = doc(100_000, "Replay capacity in transitions (oldest evicted first).")
    min_replay_size: int = doc(1_000, "Transitions in replay before learning starts.")
    samples_per_insert: float = doc(
        32.0, "Transitions sampled per transition inserted: the replay ratio "
              "(updates per env step = samples_per_insert / batch_size).")
    samples_per_insert_tolerance: float = doc(
        0.1, "Allowed drift of the replay ratio, as a fraction of samples_per_insert * min_replay_size.")
    adder_batch_size: int = doc(16, "Transitions an adder buffers before one replay insert.")
    variable_update_period: int = doc(1, "Actor steps (vector steps for several envs per actor) between checks for newer weights.")
    envs_per_actor: int = doc(
        1, "Environments one actor steps in lockstep: one batched policy forward per vector step, each "
           "environment with its own exploration stream and its own lane of one vectorised n-step adder.")
    deduplicate_frames: bool = doc(
        True, "Store each distinct uint8 image frame once in replay (same samples; other observations unchanged).")
    replay_frames_per_item: float | None = doc(
        None, "Frame-pool entries budgeted per transition with deduplicate_frames (None: 1 for stacks of 4+ "
              "frames, C for C <= 3 colour planes); when the pool fills, the oldest transitions go early.")

    @classmethod
    def field_with_default(cls, name: str, default: Any) -> Any:
        """Field ``name`` of this class with another default and the same doc line."""
        return doc(default, field_docs(cls)[name])

    def __post_init__(self) -> None:
        positive(self, "batch_size", "n_step", "max_replay_size", "min_replay_size", "samples_per_insert",
                 "adder_batch_size", "variable_update_period")
        non_negative(self, "samples_per_insert_tolerance")
        owner = type(self).__name__
        require(self.replay_frames_per_item is None or self.replay_frames_per_item > 0, owner,
                "replay_frames_per_item", self.replay_frames_per_item, "be > 0 or None")
        in_unit_interval(self, "discount")
        require(self.min_replay_size >= self.batch_size, owner, "min_replay_size", self.min_replay_size,
                f"be >= batch_size ({self.batch_size})")
        require(self.min_replay_size <= self.max_replay_size, owner, "min_replay_size", self.min_replay_size,
                f"be <= max_replay_size ({self.max_replay_size})")
        require(isinstance(self.envs_per_actor, int) and not isinstance(self.envs_per_actor, bool)
                and self.envs_per_actor > 0, owner, "envs_per_actor", self.envs_per_actor, "be a positive integer")
        require(self.adder_batch_size * self.envs_per_actor <= self.max_replay_size, owner, "envs_per_actor",
                self.envs_per_actor, f"keep one actor's grouped insert (adder_batch_size {self.adder_batch_size} x "
                f"envs_per_actor) within max_replay_size ({self.max_replay_size})")


class OffPolicyBuilder(Builder):
    """Replay table, n-step adder and feed-forward actor from an ``OffPolicyConfig``.

    Subclasses declare ``variable_names`` and implement ``actor_modules``
    (the networks an actor's variable client loads, by those names),
    ``make_policy`` and ``make_learner``; ``make_sampler`` chooses how the
    table samples (uniformly unless overridden).
    """

    def __init__(self, config: OffPolicyConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self.envs_per_actor = config.envs_per_actor

    @property
    def updates_per_env_step(self) -> float:
        """samples_per_insert / batch_size: the learner updates per env step the rate limiter holds."""
        return self.config.samples_per_insert / self.config.batch_size

    def make_rate_limiter(self) -> SampleToInsertRatio:
        """The table's ``SampleToInsertRatio``: its window follows ``samples_per_insert_tolerance``
        and is never narrower than one learner batch and one actor's insert batch need
        (``SampleToInsertRatio.with_tolerance``; an insert batch is ``adder_batch_size`` x
        ``envs_per_actor`` transitions, see ``make_adders``)."""
        config = self.config
        return SampleToInsertRatio.with_tolerance(
            config.samples_per_insert, config.min_replay_size, config.samples_per_insert_tolerance,
            sample_batch_size=config.batch_size, insert_batch_size=config.adder_batch_size * self.envs_per_actor,
        )

    def expected_updates(self, max_env_steps: int) -> int:
        """Learner updates a run of ``max_env_steps`` env steps makes: none before
        ``min_replay_size`` transitions are in replay (one per env step, n-step or not), then
        the limiter's ``error_buffer`` of samples at once and ``samples_per_insert`` per
        inserted transition."""
        config = self.config
        if max_env_steps <= config.min_replay_size:
            return 0
        samples = (max_env_steps - config.min_replay_size) * config.samples_per_insert
        return int((samples + self.make_rate_limiter().error_buffer) // config.batch_size)

    def check_budget(self, max_env_steps: int) -> None:
        """Refuses a warm-up (``min_replay_size``) as long as the budget: no update would happen
        (past it, the limiter's error buffer alone admits at least two batches). Raises
        ``ConfigError`` naming the fields."""
        config, owner = self.config, type(self.config).__name__
        require(config.min_replay_size < max_env_steps, owner, "min_replay_size", config.min_replay_size,
                f"be < max_env_steps ({max_env_steps}): learning starts once min_replay_size transitions "
                f"are in replay, one per env step, so this run would end before its first update")

    @abc.abstractmethod
    def actor_modules(self, networks: Any) -> Mapping[str, nn.Module]:
        """The acting networks within ``networks``, keyed by ``variable_names``."""

    def make_sampler(self, seed: int) -> Sampler:
        """The table's sampler: uniform, with its own seeded generator."""
        return UniformSampler(seed=seed)

    def make_replay_tables(self, spec: EnvironmentSpec, seed: int) -> list[Table]:
        """One transition table with the ``make_rate_limiter`` limiter."""
        config = self.config
        return [Table(REPLAY_TABLE, config.max_replay_size, self.make_sampler(seed), self.make_rate_limiter(),
                      deduplicate_frames=config.deduplicate_frames,
                      frames_per_item=config.replay_frames_per_item)]

    def make_adder(self, client: ReplayClient, networks: Any = None) -> Adder:
        """An n-step transition adder inserting ``adder_batch_size`` transitions per call, each batch
        with the initial priorities ``make_priority_fn(networks)`` computes when it gives a function."""
        return NStepTransitionAdder(
            client, n_step=self.config.n_step, discount=self.config.discount,
            max_batch_size=self.config.adder_batch_size,
            priority_fn=self.make_priority_fn(networks),
        )

    def make_priority_fn(self, networks: Any) -> Callable[[Transition], np.ndarray] | None:
        """A function giving a batch of new transitions their initial priorities from the actor's
        ``networks`` (float64 [B]; ``networks`` may be None where an adder is made without them);
        None, the default: the table gives new items its maximum priority."""
        return None

    def make_adders(self, client: ReplayClient, num_envs: int, networks: Any = None) -> list[Adder]:
        """One n-step adder per environment. With ``num_envs`` > 1 (lockstep environments) they are
        the lanes of one ``VectorNStepTransitionAdder``, which forms the transitions of all N a
        block at a time and inserts ``num_envs`` x ``adder_batch_size`` of them per call. The
        runtimes do not flush adders when a run ends, so up to ``num_envs`` x (``adder_batch_size``
        + ``n_step`` - 2) formed transitions are not inserted then (the single adder's partial
        batch likewise)."""
        if num_envs == 1:
            return [self.make_adder(client, networks)]
        config = self.config
        return VectorNStepTransitionAdder(
            client, num_envs, n_step=config.n_step, discount=config.discount,
            steps_per_insert=config.adder_batch_size, priority_fn=self.make_priority_fn(networks),
        ).lanes()

    def make_variable_client(self, networks: Any, variable_source: VariableSource | None) -> VariableClient | None:
        """A client loading ``actor_modules(networks)`` from ``variable_source`` every
        ``variable_update_period`` actor updates, i.e. env steps (vector steps for a batched
        actor); None without a source."""
        if variable_source is None:
            return None
        modules = self.actor_modules(networks)
        if tuple(modules) != tuple(self.variable_names):
            raise ValueError(
                f"{type(self).__name__}.actor_modules gives {tuple(modules)}, "
                f"but variable_names is {tuple(self.variable_names)}"
            )
        return VariableClient(variable_source, modules, self.config.variable_update_period)

    def make_actor(
        self, policy: Policy, networks: Any, variable_source: VariableSource | None, adder: Adder | None
    ) -> Actor:
        """A ``FeedForwardActor`` whose acting networks follow ``variable_source``
        every ``variable_update_period`` env steps (no source: they stay as given)."""
        return FeedForwardActor(policy, adder, self.make_variable_client(networks, variable_source))

    def make_batched_actor(
        self, policy: BatchedPolicy, networks: Any, variable_source: VariableSource | None, adders: list[Adder]
    ) -> BatchedActor:
        """A ``BatchedFeedForwardActor``: ``policy`` (from ``make_policy`` with ``envs_per_actor``
        > 1) acts for all ``len(adders)`` environments at once, environment i writes through
        ``adders[i]`` (from ``make_adders``), and the acting networks follow ``variable_source``.
        Raises TypeError when ``policy`` is not a ``BatchedPolicy``."""
        if not isinstance(policy, BatchedPolicy):
            raise TypeError(f"{type(self).__name__} with several environments per actor needs a BatchedPolicy "
                            f"(make_policy with envs_per_actor > 1), got {type(policy).__name__}")
        return BatchedFeedForwardActor(policy, adders, self.make_variable_client(networks, variable_source))
