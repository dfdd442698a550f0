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
from distrl.experiments.config import ExperimentConfig, build_networks, experiment_record
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.reporting import RunRecorder
from distrl.replay.client import LocalReplayClient, ReplayClient
from distrl.errors import TrainingError
from distrl.specs import EnvironmentSpec, make_environment_spec
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
    """Runs ``config`` to its env-step budget in this process and returns the summary.

    Errors before the run starts (an environment that cannot be built, an
    agent that cannot act in its spaces) propagate as they are, most of them
    ``ValueError``s. Once the run directory exists, a failure writes
    ``summary.json`` with status ``failed`` (or ``interrupted`` for Ctrl-C,
    which is re-raised) and raises ``TrainingError`` from the original error.
    """
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    num_envs = config.builder.envs_per_actor
    environments = [config.environment_factory(derive_seed(config.seed, "env", i)) for i in range(num_envs)]
    spec = make_environment_spec(environments[0])
    networks = build_networks(config, spec)
    recorder = RunRecorder(
        config.run_dir, config.env, config.agent, config.seed, "debug", config.max_env_steps,
        experiment_record(config, spec), config.reward_threshold, config.progress, config.tensorboard,
        config.wandb_project,
    )
    run = _LocalRun(config, spec, environments, networks, recorder)
    try:
        return run.train()
    except BaseException as error:
        recorder.fail(run.env_steps, run.learner_steps, error)
        if isinstance(error, Exception):
            raise TrainingError(
                f"training failed at env step {run.env_steps}: {type(error).__name__}: {error}",
                run.env_steps, recorder.run_dir,
            ) from error
        raise


class _LocalRun:
    """The parts of one single-process run, and its loop (``train``)."""

    def __init__(
        self, config: ExperimentConfig, spec: EnvironmentSpec, environments: list, networks: Any,
        recorder: RunRecorder,
    ) -> None:
        self.config, self.recorder = config, recorder
        builder = config.builder
        actor_networks = copy.deepcopy(networks)
        eval_networks = copy.deepcopy(networks)
        self.counter = Counter()
        table = builder.make_replay_tables(spec, seed=derive_seed(config.seed, "replay"))[0]
        self.client = client = LocalReplayClient(table)
        self.learner = learner = builder.make_learner(
            networks, SampleIterator(client, builder.batch_size), client, self.counter, recorder.logger,
            torch.device("cpu"),
        )
        policy = builder.make_policy(
            actor_networks, evaluation=False, seed=derive_seed(config.seed, "policy", 0),
            exploration=builder.actor_exploration(0, 1),
        )
        eval_policy = builder.make_policy(eval_networks, evaluation=True, seed=derive_seed(config.seed, "eval_policy"))
        self.eval_source = RecordingVariableSource(learner)
        self.eval_actor = builder.make_actor(eval_policy, eval_networks, self.eval_source, None)
        if len(environments) > 1:
            adders = builder.make_adders(client, len(environments))
            self.actor: Actor | BatchedActor = builder.make_batched_actor(policy, actor_networks, learner, adders)
            self.vector_loop: VectorEnvironmentLoop | None = VectorEnvironmentLoop(
                environments, LocalAgent(self.actor, learner, client, builder.batch_size), self.counter,
                recorder.logger, on_episode_end=self._on_episode_end,
            )
        else:
            self.actor = builder.make_actor(policy, actor_networks, learner, builder.make_adder(client))
            self.vector_loop = None
            self.loop = EnvironmentLoop(
                environments[0], LocalAgent(self.actor, learner, client, builder.batch_size), self.counter,
                recorder.logger, on_episode_end=self._on_episode_end,
            )

    @property
    def env_steps(self) -> int:
        """Env steps taken so far: the single-env loop counts every step, the vector loop
        every vector step (the counter gets a single env's steps only when its episode ends)."""
        if self.vector_loop is not None:
            return int(self.counter.get("env_steps"))
        return self.loop.total_steps

    @property
    def learner_steps(self) -> int:
        return self.learner.steps

    def _on_episode_end(self, result: dict[str, float]) -> None:
        if result["completed"]:
            self.recorder.episode_done(result["episode_return"])

    def _act(self, remaining: int, until_eval: int) -> None:
        if self.vector_loop is not None:
            self.vector_loop.run(num_steps=min(remaining, until_eval, _VECTOR_CHUNK_STEPS))
        else:
            self.loop.run_episode(max_steps=remaining)

    def _evaluate(self, env_steps: int) -> bool:
        """An evaluation round; True when ``on_evaluation`` asked the run to stop."""
        return evaluate_and_keep_best(
            self.config, self.eval_actor, self.eval_source, self.recorder, env_steps, self.learner.steps
        )

    def train(self) -> dict[str, Any]:
        """Acts and learns to the budget, evaluating every ``eval_every`` env steps and at the end."""
        config, recorder, learner = self.config, self.recorder, self.learner
        self.actor.update(wait=True)  # Start from version 0, so the first data is tagged with it.
        env_steps = 0
        next_eval = config.eval_every
        stop = False
        while env_steps < config.max_env_steps and not stop:
            self._act(config.max_env_steps - env_steps, next_eval - env_steps)
            env_steps = self.env_steps
            recorder.progress(env_steps, learner.steps)
            if env_steps >= next_eval and env_steps < config.max_env_steps:
                stop = self._evaluate(env_steps)
                next_eval = (env_steps // config.eval_every + 1) * config.eval_every
        if not stop:
            self._evaluate(env_steps)
        save_checkpoint(recorder.run_dir / "checkpoint.pt", {"learner": learner.save()})
        end_reason = "on_evaluation" if stop else "budget"
        return recorder.finish(env_steps, learner.steps,
                               extra={"end_reason": end_reason, "replay": dict(self.client.info())})
