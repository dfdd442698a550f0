"""Faults injected into local Ray runs: a lost replay server, a killed learner with damaged
checkpoints, an environment that raises. Each run is DQN on CartPole with one env actor and a
checkpoint every second, on the session's Ray (``ray_session``)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import dm_env
import pytest

ray = pytest.importorskip("ray")

from distrl.envs import make_environment  # noqa: E402
from distrl.envs.wrappers import EnvironmentWrapper  # noqa: E402
from distrl.errors import TrainingError  # noqa: E402
from distrl.experiments import make_experiment_config  # noqa: E402
from distrl.experiments.distributed import DistributedConfig, run_distributed  # noqa: E402
from distrl.utils.checkpointing import CheckpointStore, load_checkpoint  # noqa: E402

# The env actors unpickle this module's environment factory: send it by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL_DQN = ["min_replay_size=200", "batch_size=32", "hidden_sizes=32,32", "samples_per_insert=8"]


def small_run(tmp_path: Path, max_env_steps: int = 60_000, **fields):
    return make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=max_env_steps, agent_overrides=SMALL_DQN,
        eval_every=1_000_000, eval_episodes=1, run_dir=str(tmp_path), progress=False, checkpoint_every_s=1.0,
        **fields,
    )


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's sealed checkpoint folders, newest first."""
    return CheckpointStore(Path(run_dir) / "checkpoints").checkpoints()


def read_summary(tmp_path: Path) -> dict:
    (path,) = tmp_path.glob("*/summary.json")
    return json.loads(path.read_text())


def test_restarted_replay_server_restores_its_checkpoint_and_the_run_finishes(ray_session, tmp_path):
    seen: dict = {}

    def on_poll(state):
        if "killed_at" not in seen:
            if state.learner_steps >= 300 and len(checkpoints(state.run_dir)) >= 1:
                seen["killed_at"] = state.learner_steps
                ray.kill(state.replay_server, no_restart=False)
            return False
        return state.replay_restarts >= 1 and state.learner_steps >= seen["killed_at"] + 300

    summary = run_distributed(small_run(tmp_path), DistributedConfig(num_actors=1, poll_interval_s=0.25),
                              on_poll=on_poll)
    figures = summary["distributed"]
    print(f"replay server restarted: restored from {figures['replay_restored_from']}, "
          f"{figures['replay_lost_inserts']} inserts lost, {figures['actor_lost_insert_calls']} insert calls dropped")
    assert summary["status"] == "completed" and summary["end_reason"] == "on_poll"
    assert figures["replay_restarts"] == 1
    (restored_from,) = figures["replay_restored_from"]
    assert restored_from is not None and Path(restored_from).parent.name == "checkpoints"
    assert isinstance(figures["replay_lost_inserts"], int) and figures["replay_lost_inserts"] >= 0
    # The restored table kept filling and the learner kept sampling it.
    assert summary["replay"]["inserts"] > 0 and summary["learner_steps"] >= seen["killed_at"] + 300
    assert read_summary(tmp_path)["distributed"]["replay_restarts"] == 1


def test_lost_replay_server_without_restarts_ends_the_run_at_once_naming_the_option(ray_session, tmp_path):
    seen: dict = {}

    def on_poll(state):
        if "killed" not in seen and state.learner_steps >= 100:
            seen["killed"] = time.monotonic()
            ray.kill(state.replay_server, no_restart=True)

    dist = DistributedConfig(num_actors=1, poll_interval_s=0.25, replay_max_restarts=0)
    with pytest.raises(TrainingError, match=r"the replay server died \(replay_max_restarts=0\)"):
        run_distributed(small_run(tmp_path), dist, on_poll=on_poll)
    ended_after_s = time.monotonic() - seen["killed"]
    print(f"replay server lost without restarts: the run ended {ended_after_s:.1f} s after the kill")
    assert ended_after_s < 10, ended_after_s
    summary = read_summary(tmp_path)
    assert summary["status"] == "failed" and "replay_max_restarts=0" in summary["error"]["message"]


def _kill_learner(state) -> None:
    """SIGKILL the learner process itself: it is gone before the driver's next call reaches it."""
    os.kill(int(state.learner_stats["pid"]), signal.SIGKILL)


def test_killed_learner_skips_a_torn_checkpoint_and_resumes_from_the_previous(ray_session, tmp_path):
    seen: dict = {}

    def on_poll(state):
        if "killed" not in seen:
            folders = checkpoints(state.run_dir)
            if state.learner_steps >= 200 and len(folders) >= 2 and "pid" in state.learner_stats:
                newest, previous = folders[0], folders[1]
                torn = newest / "learner.pt"
                torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
                seen.update(killed=time.monotonic(), torn=newest.name, incarnation=state.learner_stats["incarnation"],
                            previous_steps=int(load_checkpoint(previous / "learner.pt")["learner"]["steps"]))
                _kill_learner(state)
            return False
        if state.learner_stats.get("incarnation") != seen["incarnation"] and "back" not in seen:
            seen["back"] = time.monotonic() - seen["killed"]
        return "back" in seen and state.learner_steps >= state.learner_stats["restored_from_steps"] + 200

    summary = run_distributed(small_run(tmp_path), DistributedConfig(num_actors=1, poll_interval_s=0.25),
                              on_poll=on_poll)
    figures = summary["distributed"]
    assert figures["learner_restarts"] == 1
    assert figures["learner_restored_from_steps"] == seen["previous_steps"]
    assert seen["torn"] in figures["learner_restore_note"] and "learner.pt" in figures["learner_restore_note"]
    print(f"learner killed with a torn newest checkpoint: restored from {seen['previous_steps']} steps, "
          f"stepping again {seen['back']:.1f} s after the kill")
    assert seen["back"] < 10, seen["back"]
    assert figures["actor_version_regressions"] == 0


def test_killed_learner_with_every_checkpoint_corrupted_ends_the_run_naming_the_file(ray_session, tmp_path):
    seen: dict = {}

    def on_poll(state):
        if "killed" not in seen:
            folders = checkpoints(state.run_dir)
            if state.learner_steps >= 100 and len(folders) >= 2 and "pid" in state.learner_stats:
                for folder in folders:
                    data = bytearray((folder / "learner.pt").read_bytes())
                    data[-200:-136] = bytes(64)  # Zeroes 64 bytes: the sizes match, the hashes do not.
                    (folder / "learner.pt").write_bytes(bytes(data))
                seen["killed"] = time.monotonic()
                _kill_learner(state)

    with pytest.raises(TrainingError, match=r"learner\.pt") as raised:
        run_distributed(small_run(tmp_path), DistributedConfig(num_actors=1, poll_interval_s=0.25),
                        on_poll=on_poll)
    ended_after_s = time.monotonic() - seen["killed"]
    print(f"learner killed with every checkpoint corrupted: the run ended {ended_after_s:.1f} s after the kill")
    assert ended_after_s < 30, ended_after_s
    assert "no intact checkpoint" in str(raised.value)
    assert read_summary(tmp_path)["status"] == "failed"


class RaisesEveryNSteps(EnvironmentWrapper):
    """CartPole that raises on every ``period``-th step since it was built (a flaky simulator)."""

    def __init__(self, environment: dm_env.Environment, period: int) -> None:
        super().__init__(environment)
        self._period = period
        self._steps = 0

    def step(self, action) -> dm_env.TimeStep:
        self._steps += 1
        if self._steps % self._period == 0:
            raise RuntimeError(f"simulator crashed at step {self._steps}")
        return self._environment.step(action)


def flaky_cartpole(seed: int) -> dm_env.Environment:
    return RaisesEveryNSteps(make_environment("gym:CartPole-v1", seed), 1_500)


def test_env_that_raises_is_rebuilt_and_the_run_finishes(ray_session, tmp_path):
    config = dataclasses.replace(small_run(tmp_path, max_env_steps=5_000), environment_factory=flaky_cartpole)
    summary = run_distributed(config, DistributedConfig(num_actors=1, poll_interval_s=0.25))
    figures = summary["distributed"]
    assert summary["status"] == "completed" and summary["env_steps"] >= 5_000
    # 5,000+ steps of a 1,500-step fuse: three failures, each rebuilt.
    assert figures["env_failures"] == [3]
    assert all("simulator crashed at step 1500" in cause for cause in figures["env_failure_causes"])


def test_env_failures_past_the_limit_end_the_run_with_a_summary_and_a_checkpoint(ray_session, tmp_path):
    config = dataclasses.replace(small_run(tmp_path, max_env_steps=20_000), environment_factory=flaky_cartpole)
    with pytest.raises(TrainingError, match="simulator crashed at step 1500") as raised:
        run_distributed(config, DistributedConfig(num_actors=1, poll_interval_s=0.25, max_env_failures=1))
    assert "max_env_failures=1" in str(raised.value.__cause__)
    summary = read_summary(tmp_path)
    assert summary["status"] == "failed" and summary["env_steps"] >= 2_000  # As of the last poll.
    assert checkpoints(Path(summary["run_dir"])), "no checkpoint after the failure"
