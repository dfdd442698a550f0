"""The single-process runtime: acting and learning interleaved, no Ray.

``run_local`` never imports ray. The actor's ``update()`` runs learner steps
while the replay table can sample, so the samples-per-insert ratio holds
exactly and nothing can deadlock: inserts never wait (the limiter only
counts them) and a sample is only asked for when it is allowed.

With ``builder.envs_per_actor == 1`` one environment runs in an
``EnvironmentLoop``, an episode at a time. With N > 1 (e.g. A2C) N
environments, seeded ``derive_seed(seed, "env", i)``, each with its own
adder, run in lockstep in a ``VectorEnvironmentLoop`` with the builder's
batched actor; after every vector step the learner steps while the table
can sample and then the actor loads the newer weights. The vector path may
overshoot ``max_env_steps`` by fewer than N steps (it only takes whole
vector steps). Evaluation, progress and the summary are the same in both.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

import torch

from distrl.core import Actor, BatchedActor, Learner
from distrl.environment_loop import EnvironmentLoop, VectorEnvironmentLoop
from distrl.experiments.config import ExperimentConfig, experiment_record
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.reporting import RunRecorder
from distrl.replay.client import LocalReplayClient, ReplayClient
from distrl.specs import make_environment_spec
from distrl.types import SampleBatch
from distrl.utils.checkpointing import save_checkpoint
from distrl.utils.counting import Counter
from distrl.utils.seeding import derive_seed, seed_everything


class SampleIterator(Iterator[SampleBatch]):
    """Yields ``client.sample(batch_size)`` forever (the local learner's dataset)."""

    def __init__(self, client: ReplayClient, batch_size: int) -> None:
        self._client = client
        self._batch_size = batch_size

    def __next__(self) -> SampleBatch:
        return self._client.sample(self._batch_size)


class LocalAgent(Actor, BatchedActor):
    """An actor and a learner in one process, as Acme's single-process agent.

    Acting is forwarded to ``actor``, an ``Actor`` (one environment, in an
    ``EnvironmentLoop``) or a ``BatchedActor`` (N, in a
    ``VectorEnvironmentLoop``): the loop calls whichever interface it drives.
    ``update()`` first runs every learner step the replay table allows now
    (while ``client.can_sample(batch_size)``), then, if any ran (or ``wait``),
    lets the actor load the newer weights from the learner.
    """

    def __init__(
        self, actor: Actor | BatchedActor, learner: Learner, client: ReplayClient, batch_size: int
    ) -> None:
        self._actor = actor
        self._learner = learner
        self._client = client
        self._batch_size = batch_size

    def select_action(self, observation: Any) -> Any:
        return self._actor.select_action(observation)

    def select_actions(self, observations: Any) -> Any:
        return self._actor.select_actions(observations)

    def observe_first(self, *args: Any) -> None:
        """``(timestep)`` for an ``Actor``, ``(index, timestep)`` for a ``BatchedActor``."""
        self._actor.observe_first(*args)

    def observe(self, *args: Any) -> None:
        """``(action, next_timestep)`` or ``(index, action, next_timestep)``, as ``observe_first``."""
        self._actor.observe(*args)

    def update(self, wait: bool = False) -> None:
        stepped = False
        while self._client.can_sample(self._batch_size):
            self._learner.step()
            stepped = True
        if stepped or wait:
            self._actor.update(wait)


#: Env steps per ``VectorEnvironmentLoop.run`` call, so the progress bar moves between evaluations.
_VECTOR_CHUNK_STEPS = 1_000


def run_local(config: ExperimentConfig) -> dict[str, Any]:
    """Runs ``config`` to its env-step budget in this process and returns the summary."""
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    builder = config.builder
    num_envs = builder.envs_per_actor
    environments = [config.environment_factory(derive_seed(config.seed, "env", i)) for i in range(num_envs)]
    spec = make_environment_spec(environments[0])

    networks = config.network_factory(spec)
    actor_networks = copy.deepcopy(networks)
    eval_networks = copy.deepcopy(networks)

    recorder = RunRecorder(
        config.run_dir, config.env, config.agent, config.seed, "debug", config.max_env_steps,
        experiment_record(config, spec), config.reward_threshold, config.progress, config.tensorboard,
    )
    counter = Counter()
    table = builder.make_replay_tables(spec, seed=derive_seed(config.seed, "replay"))[0]
    client = LocalReplayClient(table)
    learner = builder.make_learner(
        networks, SampleIterator(client, builder.batch_size), client, counter, recorder.logger,
        torch.device("cpu"),
    )
    policy = builder.make_policy(
        actor_networks, evaluation=False, seed=derive_seed(config.seed, "policy", 0),
        exploration=builder.actor_exploration(0, 1),
    )
    eval_policy = builder.make_policy(eval_networks, evaluation=True, seed=derive_seed(config.seed, "eval_policy"))
    eval_source = RecordingVariableSource(learner)
    eval_actor = builder.make_actor(eval_policy, eval_networks, eval_source, None)

    def on_episode_end(result: dict[str, float]) -> None:
        if result["completed"]:
            recorder.episode_done(result["episode_return"])

    if num_envs > 1:
        adders = builder.make_adders(client, num_envs)
        actor: Actor | BatchedActor = builder.make_batched_actor(policy, actor_networks, learner, adders)
        vector_loop = VectorEnvironmentLoop(
            environments, LocalAgent(actor, learner, client, builder.batch_size), counter,
            recorder.logger, on_episode_end=on_episode_end,
        )

        def act(remaining: int, until_eval: int) -> None:
            vector_loop.run(num_steps=min(remaining, until_eval, _VECTOR_CHUNK_STEPS))
    else:
        actor = builder.make_actor(policy, actor_networks, learner, builder.make_adder(client))
        loop = EnvironmentLoop(
            environments[0], LocalAgent(actor, learner, client, builder.batch_size), counter,
            recorder.logger, on_episode_end=on_episode_end,
        )

        def act(remaining: int, until_eval: int) -> None:
            loop.run_episode(max_steps=remaining)

    actor.update(wait=True)  # Start from version 0, so the first data is tagged with it.

    def run_evaluation(env_steps: int) -> None:
        evaluate_and_keep_best(
            config, eval_actor, eval_source,
            lambda result: recorder.record_evaluation(result, env_steps, learner.steps),
            recorder.run_dir, env_steps,
        )

    env_steps = 0
    next_eval = config.eval_every
    while env_steps < config.max_env_steps:
        act(config.max_env_steps - env_steps, next_eval - env_steps)
        env_steps = int(counter.get("env_steps"))
        recorder.progress(env_steps, learner.steps)
        if env_steps >= next_eval and env_steps < config.max_env_steps:
            run_evaluation(env_steps)
            next_eval = (env_steps // config.eval_every + 1) * config.eval_every
    run_evaluation(env_steps)
    save_checkpoint(recorder.run_dir / "checkpoint.pt", {"learner": learner.save()})
    return recorder.finish(env_steps, learner.steps, extra={"replay": dict(client.info())})
