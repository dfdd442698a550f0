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
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from distrl.core import Actor, BatchedActor, Learner
from distrl.environment_loop import EnvironmentLoop, VectorEnvironmentLoop
from distrl.experiments.config import ExperimentConfig, build_networks, experiment_record
from distrl.experiments.evaluation import RecordingVariableSource, evaluate_and_keep_best
from distrl.experiments.reporting import RunRecorder
from distrl.replay.client import LocalReplayClient, ReplayClient
from distrl.agents.learning import NonFiniteLossError
from distrl.errors import TrainingError
from distrl.experiments.checkpoints import (
    LEARNER_FILE,
    REPLAY_FILE,
    RUN_FILE,
    CheckpointSchedule,
    checkpoint_store,
    global_rng_state,
    load_learner_state,
    replay_checkpoint_enabled,
    report_skipped,
    resume_checkpoint,
    set_global_rng_state,
)
from distrl.specs import EnvironmentSpec, make_environment_spec
from distrl.types import SampleBatch
from distrl.utils.checkpointing import save_checkpoint
from distrl.utils.counting import Counter
from distrl.utils.seeding import derive_seed, seed_everything
from distrl.utils.signals import RunInterrupted, stop_requested
from distrl.utils.state_files import load_state, save_state


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


def run_local(config: ExperimentConfig, resume: str | Path | None = None) -> dict[str, Any]:
    """Runs ``config`` to its env-step budget in this process and returns the summary.

    ``resume`` (a run directory) continues that run from its newest intact
    checkpoint instead of starting one (``config`` must be the run's, with
    any budget). With one environment per actor the resumed run repeats
    exactly what the uninterrupted run would have done, when the
    environment's state between episodes is its random generator (the
    gymnasium adapter for classic-control and toy-text tasks, GridWorld);
    otherwise it carries on with fresh episodes (``summary.json``'s
    ``resume_exact`` says which).

    Errors before the run starts (an environment that cannot be built, an
    agent that cannot act in its spaces, settings that cannot learn in the
    budget: ``Builder.check_budget``) propagate as they are, most of them
    ``ValueError``s. Once the run directory exists, a failure writes
    ``summary.json`` with status ``failed`` and raises ``TrainingError`` from
    the original error. A SIGINT/SIGTERM under ``distrl.utils.signals.graceful_stop``
    ends the run at the next episode end (cut after ``STOP_EPISODE_WAIT_S``)
    with a checkpoint and a summary marked ``interrupted``, then raises
    ``RunInterrupted``; a bare Ctrl-C (``KeyboardInterrupt``) writes that summary too.
    """
    config.builder.check_budget(config.max_env_steps)
    seed_everything(config.seed)
    torch.set_num_threads(config.torch_threads)
    checkpoint, run_state = None, None
    if resume is not None:
        checkpoint, skipped = resume_checkpoint(config, resume)
        report_skipped(skipped)
        run_state = load_state(checkpoint / RUN_FILE)
    num_envs = config.builder.envs_per_actor
    env_stream = "env" if run_state is None or run_state["exact"] else f"env-resumed-{run_state['env_steps']}"
    environments = [config.environment_factory(derive_seed(config.seed, env_stream, i)) for i in range(num_envs)]
    spec = make_environment_spec(environments[0])
    networks = build_networks(config, spec)
    recorder = RunRecorder(
        config.run_dir, config.env, config.agent, config.seed, "debug", config.max_env_steps,
        experiment_record(config, spec), config.reward_threshold, config.progress, config.tensorboard,
        config.wandb_project, resume_dir=resume, resume_state=None if run_state is None else run_state["recorder"],
    )
    run = _LocalRun(config, spec, environments, networks, recorder)
    try:
        if checkpoint is not None:
            run.restore(checkpoint, run_state)
        return run.train()
    except RunInterrupted:
        raise  # train() wrote the checkpoint and the summary.
    except BaseException as error:
        recorder.fail(run.env_steps, run.learner_steps, error)
        if isinstance(error, Exception):
            raise TrainingError(
                f"training failed at env step {run.env_steps}: {type(error).__name__}: {error}",
                run.env_steps, recorder.run_dir,
            ) from error
        raise


#: After a stop signal, an episode may run on this long to end by itself (an exact checkpoint)
#: before it is cut.
STOP_EPISODE_WAIT_S = 10.0


class _LocalRun:
    """The parts of one single-process run, its loop (``train``) and its checkpoints."""

    def __init__(
        self, config: ExperimentConfig, spec: EnvironmentSpec, environments: list, networks: Any,
        recorder: RunRecorder,
    ) -> None:
        self.config, self.recorder = config, recorder
        self.environments = environments
        builder = config.builder
        actor_networks = copy.deepcopy(networks)
        eval_networks = copy.deepcopy(networks)
        self.counter = Counter()
        self.table = builder.make_replay_tables(spec, seed=derive_seed(config.seed, "replay"))[0]
        self.client = client = LocalReplayClient(self.table)
        self.learner = learner = builder.make_learner(
            networks, SampleIterator(client, builder.batch_size), client, self.counter, recorder.logger,
            torch.device("cpu"),
        )
        self.policy = policy = builder.make_policy(
            actor_networks, evaluation=False, seed=derive_seed(config.seed, "policy", 0),
            exploration=builder.actor_exploration(0, 1),
        )
        eval_policy = builder.make_policy(eval_networks, evaluation=True, seed=derive_seed(config.seed, "eval_policy"))
        self.eval_source = RecordingVariableSource(learner)
        self.eval_actor = builder.make_actor(eval_policy, eval_networks, self.eval_source, None)
        self.next_eval = config.eval_every
        self.checkpoint_failures = 0
        self._stop_since: float | None = None
        self._at_episode_end = True  # The single-env loop is between episodes (an exact checkpoint).
        if len(environments) > 1:
            self.adders = builder.make_adders(client, len(environments), actor_networks)
            self.actor: Actor | BatchedActor = builder.make_batched_actor(policy, actor_networks, learner, self.adders)
            self.vector_loop: VectorEnvironmentLoop | None = VectorEnvironmentLoop(
                environments, LocalAgent(self.actor, learner, client, builder.batch_size), self.counter,
                recorder.logger, on_episode_end=self._on_episode_end,
            )
        else:
            self.adders = [builder.make_adder(client, actor_networks)]
            self.actor = builder.make_actor(policy, actor_networks, learner, self.adders[0])
            self.vector_loop = None
            self.loop = EnvironmentLoop(
                environments[0], LocalAgent(self.actor, learner, client, builder.batch_size), self.counter,
                recorder.logger, on_episode_end=self._on_episode_end, should_stop=self._cut_episode,
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

    def _cut_episode(self) -> bool:
        """True once a stop signal has waited ``STOP_EPISODE_WAIT_S`` for the episode to end."""
        if stop_requested() is None:
            return False
        if self._stop_since is None:
            self._stop_since = time.monotonic()
        return time.monotonic() - self._stop_since > STOP_EPISODE_WAIT_S

    def _act(self, remaining: int, until_eval: int) -> None:
        if self.vector_loop is not None:
            self.vector_loop.run(num_steps=min(remaining, until_eval, _VECTOR_CHUNK_STEPS))
        else:
            self._at_episode_end = bool(self.loop.run_episode(max_steps=remaining)["completed"])

    def _evaluate(self, env_steps: int) -> bool:
        """An evaluation round; True when ``on_evaluation`` asked the run to stop."""
        return evaluate_and_keep_best(
            self.config, self.eval_actor, self.eval_source, self.recorder, env_steps, self.learner.steps
        )

    def _acting_state(self) -> tuple[dict[str, Any], bool]:
        """The acting side's state, and whether a resume from it repeats this run exactly.

        Environments take part through ``checkpoint_state()`` /
        ``restore_checkpoint_state(state)`` (the gymnasium adapter, GridWorld);
        one without them, or with None (mid-episode), makes the resume inexact,
        as does the vector loop (its environments are mid-episode).
        """
        environments = [getattr(env, "checkpoint_state", lambda: None)() for env in self.environments]
        adders = [adder.get_state() for adder in self.adders]
        exact = (self.vector_loop is None and self._at_episode_end
                 and all(state is not None for state in environments + adders))
        state = {"policy": self.policy.get_state(), "adders": adders, "environments": environments,
                 "global_rng": global_rng_state()}
        return state, exact

    def checkpoint(self, env_steps: int) -> Path | None:
        """Writes a checkpoint at ``env_steps`` (see ``distrl.experiments.checkpoints``); a failure to
        write it is reported and counted, not fatal."""
        store = checkpoint_store(self.config, self.recorder.run_dir)
        try:
            staging = store.begin(env_steps)
            save_checkpoint(staging / LEARNER_FILE, {"learner": self.learner.save()})
            with_replay = replay_checkpoint_enabled(self.config, self.table.nbytes)
            if with_replay:
                self.table.save(staging / REPLAY_FILE)
            acting, exact = self._acting_state()
            save_state(staging / RUN_FILE, {
                "mode": "debug", "env_steps": env_steps, "next_eval": self.next_eval, "exact": exact,
                "counter": self.counter.get_counts(), "recorder": self.recorder.get_state(env_steps), **acting,
            })
            return store.commit(staging, env_steps, {"env_steps": env_steps, "learner_steps": self.learner.steps,
                                                     "replay": with_replay, "exact": exact})
        except NonFiniteLossError:
            raise  # Never checkpoint corrupted weights; the run ends with this error.
        except OSError as error:
            self.checkpoint_failures += 1
            print(f"distrl: checkpoint at env step {env_steps} failed: {error}", file=sys.stderr)
            return None

    def restore(self, folder: Path, run_state: dict[str, Any]) -> None:
        """Loads a checkpoint's learner, replay and acting state (``run_local(resume=...)``)."""
        self.learner.restore(load_learner_state(folder)["learner"])
        if (folder / REPLAY_FILE).exists():
            self.table.restore(folder / REPLAY_FILE)
        else:
            print(f"distrl: {folder} holds no replay (checkpoint_replay was off): the replay starts empty",
                  file=sys.stderr)
        self.counter.restore(run_state["counter"])
        self.next_eval = int(run_state["next_eval"])
        self.policy.set_state(run_state["policy"])
        if run_state["exact"]:
            for adder, state in zip(self.adders, run_state["adders"]):
                adder.set_state(state)
            for environment, state in zip(self.environments, run_state["environments"]):
                environment.restore_checkpoint_state(state)
            set_global_rng_state(run_state["global_rng"])
        if self.vector_loop is None:
            self.loop.total_steps = int(run_state["env_steps"])
        self.resume_exact = bool(run_state["exact"])

    def train(self) -> dict[str, Any]:
        """Acts and learns to the budget, evaluating every ``eval_every`` env steps and at the end,
        checkpointing when due and at the end; on a stop signal, checkpoints and stops."""
        config, recorder, learner = self.config, self.recorder, self.learner
        recorder.start_training()
        self.actor.update(wait=True)  # Start from the learner's version, so the first data is tagged with it.
        env_steps = self.env_steps
        schedule = CheckpointSchedule(config, env_steps)
        stop = False
        while env_steps < config.max_env_steps and not stop:
            self._act(config.max_env_steps - env_steps, self.next_eval - env_steps)
            env_steps = self.env_steps
            recorder.progress(env_steps, learner.steps)
            signal_number = stop_requested()
            if signal_number is not None:
                self.checkpoint(env_steps)
                recorder.finish(env_steps, learner.steps, status="interrupted",
                                extra=self._summary_extra("signal"), error=RunInterrupted(signal_number))
                raise RunInterrupted(signal_number)
            if env_steps >= self.next_eval and env_steps < config.max_env_steps:
                stop = self._evaluate(env_steps)
                self.next_eval = (env_steps // config.eval_every + 1) * config.eval_every
            if schedule.due(env_steps):
                self.checkpoint(env_steps)
                schedule.done(env_steps)
        if not stop:
            self._evaluate(env_steps)
        self.checkpoint(env_steps)
        return recorder.finish(env_steps, learner.steps, extra=self._summary_extra("on_evaluation" if stop else "budget"))

    def _summary_extra(self, end_reason: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"end_reason": end_reason, "replay": dict(self.client.info()),
                                 "checkpoint_failures": self.checkpoint_failures}
        if hasattr(self, "resume_exact"):
            extra["resume_exact"] = self.resume_exact
        return extra
