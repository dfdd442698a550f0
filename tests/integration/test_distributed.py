"""The Ray runtime end to end: a short DQN run, weight versions, an actor killed mid-run, the CLI."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")

from distrl.agents.dqn.actor import apex_epsilon  # noqa: E402
from distrl.experiments import make_experiment_config  # noqa: E402
from distrl.experiments.distributed import DistributedConfig, run_distributed  # noqa: E402
from distrl.utils.checkpointing import CheckpointStore, load_checkpoint  # noqa: E402
from distrl.utils.config import ConfigError  # noqa: E402

# samples_per_insert 8 (not 32): a quarter of the learner work per env step,
# so the run is short while the rate limiter still paces the actors.
SMALL_DQN = ["min_replay_size=200", "batch_size=32", "hidden_sizes=32,32", "samples_per_insert=8",
             "target_update_period=50"]


def newest_learner_checkpoint(run_dir: Path) -> dict:
    """``learner.pt`` of the newest intact checkpoint of a run."""
    folder, _ = CheckpointStore(Path(run_dir) / "checkpoints").latest_intact()
    assert folder is not None, f"no intact checkpoint in {run_dir}"
    return load_checkpoint(folder / "learner.pt")
KILL_AT_ENV_STEPS = 300


def test_apex_epsilons():
    with pytest.raises(ValueError):
        apex_epsilon(0, 1)
    assert apex_epsilon(0, 8) == pytest.approx(0.4)
    assert apex_epsilon(7, 8) == pytest.approx(0.4**8)
    values = [apex_epsilon(i, 5) for i in range(5)]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    "field, value",
    [("num_actors", 0), ("learner_device", "tpu"), ("max_restarts", -2), ("publish_period", 0),
     ("prefetch", 0), ("time_budget_s", 0.0), ("num_cpus", 0), ("poll_interval_s", 0),
     ("learner_max_restarts", -1), ("replay_max_restarts", -1), ("max_env_failures", 1.5),
     ("min_insert_interval_s", -0.01), ("min_insert_interval_s", 2.0), ("min_insert_interval_s", True)],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"DistributedConfig.{field} must"):
        DistributedConfig(**{field: value})


def test_num_cpus_needs_local_mode():
    with pytest.raises(ConfigError, match="DistributedConfig.num_cpus must be None when attaching"):
        DistributedConfig(address="auto", num_cpus=2)
    assert DistributedConfig(address="auto").mode == "cluster"
    assert DistributedConfig().mode == "local"


def test_dqn_cartpole_run_survives_a_killed_actor(ray_session, tmp_path):
    """2 actors; actor 1 is killed (Ray restarts it) after 300 env steps.

    The run ends (through ``on_poll``) once it has 3k env steps and the
    restarted actor has stepped again, or at 20k steps, which fails the test.
    Checks: a summary with throughput figures; weight versions only increase
    at every actor and reach every actor; the restarted actor acts (and so
    inserts) again; the files a debug run leaves are there.
    """
    config = make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=20_000, agent_overrides=SMALL_DQN,
        eval_every=1_500, eval_episodes=2, run_dir=str(tmp_path), progress=False,
    )
    killed: dict = {}
    polls: list = []

    def on_poll(state):
        polls.append(state)
        if "stats" not in killed:
            if state.env_steps >= KILL_AT_ENV_STEPS and state.actor_stats[1] is not None:
                killed["stats"] = state.actor_stats[1]
                ray.kill(state.actors[1], no_restart=False)
            return False
        later = [steps for inc, steps in state.steps_by_incarnation[1].items()
                 if inc != killed["stats"]["incarnation"]]
        return state.env_steps >= 3_000 and bool(later) and max(later) >= 100

    summary = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.25), on_poll=on_poll)
    dist = summary["distributed"]
    assert summary["mode"] == "local" and dist["num_actors"] == 2
    assert 3_000 <= summary["env_steps"] < 20_000 and summary["learner_steps"] > 0
    assert summary["final_eval_return"] is not None
    assert dist["env_steps_per_s"] > 0 and dist["learner_updates_per_s"] > 0
    assert len(dist["env_steps_per_s_per_actor"]) == 2
    assert 0.0 <= dist["learner_wait_fraction"] <= 1.0 and dist["bottleneck"]
    assert dist["actor_exploration"] == [pytest.approx(0.4), pytest.approx(0.4**8)]
    node = ray.get_runtime_context().get_node_id()[:8]  # One node here; a multi-node run names each.
    assert dist["learner_node"] == node and dist["actor_nodes"] == [node, node]
    # Versions only increase at each actor and reach every actor.
    assert dist["actor_version_regressions"] == 0
    assert all(v is not None and v > 0 for v in dist["actor_policy_versions"])
    assert dist["published_version"] >= max(dist["actor_policy_versions"])
    # The killed actor came back as a new incarnation that stepped again.
    assert dist["actor_restarts"][1] >= 1
    incarnations = polls[-1].steps_by_incarnation[1]
    assert killed["stats"]["incarnation"] in incarnations
    restarted = [steps for inc, steps in incarnations.items() if inc != killed["stats"]["incarnation"]]
    assert restarted and max(restarted) >= 100
    # It pulled the latest weights on restart: newer than what it had when killed.
    assert dist["actor_policy_versions"][1] > killed["stats"]["policy_version"]
    # Replay lost nothing: stored plus evicted is what was inserted.
    replay = summary["replay"]
    assert replay["inserts"] > 0 and replay["size"] + replay["evictions"] == replay["inserts"]
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "summary.json").read_text())["mode"] == "local"
    assert newest_learner_checkpoint(run_dir)["learner"]["steps"] == summary["learner_steps"]
    with open(run_dir / "metrics.csv") as f:
        metrics = {row["metric"] for row in csv.DictReader(f)}
    assert {"charts/episodic_return", "losses/td_loss", "eval/episodic_return",
            "distributed/env_steps_per_s", "distributed/learner_wait_fraction"} <= metrics


@pytest.mark.parametrize(
    "agent, overrides, max_env_steps",
    [("dqn", SMALL_DQN, 20_000), ("a2c", ["hidden_sizes=32,32"], 60_000)],
)
def test_run_survives_a_killed_learner(ray_session, tmp_path, agent, overrides, max_env_steps):
    """The learner process is killed once the driver has had it write a
    checkpoint (every second here) and it stepped 200 times; Ray restarts it, it restores the checkpoint, and the
    run goes on. The run ends (``on_poll``) once the new learner has stepped
    200 more times, or at the env-step budget, which fails the test.
    Synchronous A2C is the strict case: its actors wait for every version,
    so the restarted learner must publish one they take and must not lose
    the round they then send to sample calls its predecessor left waiting.
    """
    config = make_experiment_config(
        agent, "gym:CartPole-v1", seed=0, max_env_steps=max_env_steps, agent_overrides=overrides,
        eval_every=100_000, eval_episodes=1, run_dir=str(tmp_path), progress=False, checkpoint_every_s=1.0,
    )
    killed: dict = {}

    def on_poll(state):
        stats = state.learner_stats
        if not killed:
            if stats.get("checkpoints", 0) >= 1 and state.learner_steps >= 200:
                killed.update(stats)
                # Checkpoints only move forward: the one restored is at least this one.
                (run_dir,) = tmp_path.iterdir()
                killed["checkpoint_steps"] = int(newest_learner_checkpoint(run_dir)["learner"]["steps"])
                ray.kill(state.learner, no_restart=False)
            return False
        return stats.get("incarnation") not in (None, killed["incarnation"]) and (
            state.learner_steps >= killed["published_version"] + 200
        )

    dist = DistributedConfig(num_actors=1, poll_interval_s=0.25)
    summary = run_distributed(config, dist, on_poll=on_poll)
    figures = summary["distributed"]
    assert killed and summary["env_steps"] < max_env_steps
    assert figures["learner_restarts"] == 1
    # It resumed from a checkpoint written before the kill, not from scratch.
    restored = figures["learner_restored_from_steps"]
    assert restored is not None and 0 < killed["checkpoint_steps"] <= restored < summary["learner_steps"]
    # Versions went on increasing past everything published before the kill,
    # and the actor followed them without ever going back.
    assert figures["published_version"] > killed["published_version"] + 200
    assert figures["actor_version_regressions"] == 0
    assert figures["actor_policy_versions"][0] > killed["published_version"]
    replay = summary["replay"]
    assert replay["size"] + replay["evictions"] + replay["removals"] == replay["inserts"]
    final = newest_learner_checkpoint(Path(summary["run_dir"]))
    assert int(final["learner"]["steps"]) == summary["learner_steps"] > killed["published_version"]


def test_lost_learner_without_restarts_ends_the_run_with_an_error(ray_session, tmp_path):
    config = make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=20_000, agent_overrides=SMALL_DQN,
        eval_every=100_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )

    def on_poll(state):
        if state.learner_steps >= 50:
            ray.kill(state.learner, no_restart=True)

    dist = DistributedConfig(num_actors=1, poll_interval_s=0.25, learner_max_restarts=0)
    with pytest.raises(RuntimeError, match=r"the learner died \(learner_max_restarts=0\)"):
        run_distributed(config, dist, on_poll=on_poll)


def test_cli_cluster_mode_attaches_to_a_running_cluster(ray_session, run_cli, tmp_path):
    """``--mode cluster --address <addr>`` runs on the test session's Ray (no second cluster)."""
    address = ray.get_runtime_context().gcs_address
    result = run_cli(
        "train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--mode", "cluster", "--address", address,
        "--num-actors", "1", "--max-env-steps", "600", "--eval-every", "600", "--eval-episodes", "1",
        "--run-dir", str(tmp_path), "--no-progress", *[a for s in SMALL_DQN for a in ("--set", s)],
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[cluster]" in result.stdout
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["mode"] == "cluster" and summary["distributed"]["num_actors"] == 1


def test_cli_rejects_flags_of_other_modes(capsys):
    from distrl.cli import main

    assert main(["train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--num-actors", "2"]) == 2
    assert "--num-actors does not apply to --mode debug" in capsys.readouterr().err
    assert main(["train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--mode", "local", "--address", "auto"]) == 2
    assert "--address does not apply to --mode local" in capsys.readouterr().err
    assert main(["train", "--agent", "ddpg", "--env", "gym:Pendulum-v1", "--mode", "local",
                 "--envs-per-actor", "0"]) == 2
    assert "Config.envs_per_actor must be a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "agent, env, overrides",
    [
        ("ddpg", "gym:Pendulum-v1", ["min_replay_size=200", "batch_size=32", "actor_hidden_sizes=32,32",
                                     "critic_hidden_sizes=32,32", "samples_per_insert=8"]),
        ("a2c", "gym:CartPole-v1", ["hidden_sizes=32,32"]),
    ],
)
def test_short_distributed_run_for_each_agent(ray_session, tmp_path, agent, env, overrides):
    """DDPG (replay with a ratio limiter) and A2C (FIFO queue, synchronous) run unchanged on Ray."""
    config = make_experiment_config(
        agent, env, seed=0, max_env_steps=2_000, agent_overrides=overrides,
        eval_every=1_000, eval_episodes=2, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=1, poll_interval_s=0.25))
    dist = summary["distributed"]
    assert summary["mode"] == "local" and summary["agent"] == agent
    assert summary["env_steps"] >= 2_000 and summary["learner_steps"] > 0
    assert summary["final_eval_return"] is not None
    assert dist["actor_version_regressions"] == 0 and dist["published_version"] > 0
    assert newest_learner_checkpoint(Path(summary["run_dir"]))["learner"]["steps"] == summary["learner_steps"]
    best = load_checkpoint(Path(summary["run_dir"]) / "best_policy.pt")
    assert best["eval_return_mean"] == summary["best_eval_return"] >= summary["final_eval_return"]
    assert 0 <= best["version"] <= dist["published_version"]
    assert set(best["variables"]) == {"policy"}


def _metric_values(run_dir: Path, name: str) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(row["value"]) for row in csv.DictReader(f) if row["metric"] == name]


def test_distributed_a2c_is_synchronous_by_default(ray_session, tmp_path):
    """Two actors, two environments each: every update is one 5-step round from
    each actor (20 env steps) acted by the learner's current weights."""
    config = make_experiment_config(
        "a2c", "gym:CartPole-v1", seed=0, max_env_steps=3_000,
        agent_overrides=["hidden_sizes=32,32", "envs_per_actor=2", "log_every=10"],
        eval_every=10_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.25))
    run_dir = Path(summary["run_dir"])
    lags = _metric_values(run_dir, "charts/policy_lag")
    assert lags and all(lag == 0.0 for lag in lags)
    assert _metric_values(run_dir, "charts/dropped_segments")[-1] == 0.0
    # Actors stop mid-round, so up to one round per actor is left unconsumed.
    assert summary["env_steps"] // 20 - 2 <= summary["learner_steps"] <= summary["env_steps"] // 20
    # An actor stopped while waiting for the last update holds the version before it.
    versions = summary["distributed"]["actor_policy_versions"]
    assert all(summary["learner_steps"] - 1 <= v <= summary["learner_steps"] for v in versions)


def test_distributed_a2c_asynchronous_with_max_policy_lag(ray_session, tmp_path):
    """max_policy_lag=None: actors never wait for the learner, and no segment is dropped."""
    config = make_experiment_config(
        "a2c", "gym:CartPole-v1", seed=0, max_env_steps=3_000,
        agent_overrides=["hidden_sizes=32,32", "envs_per_actor=2", "log_every=10", "max_policy_lag=None"],
        eval_every=10_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.25))
    run_dir = Path(summary["run_dir"])
    assert summary["learner_steps"] > 0
    assert _metric_values(run_dir, "charts/dropped_segments")[-1] == 0.0


def test_distributed_a2c_with_a_small_max_policy_lag_keeps_learning(ray_session, tmp_path):
    """max_policy_lag=5: the learner publishes often enough (every 2 steps by default) that actors
    keep sending segments it accepts. Publishing every 25 steps, as before, it stopped after 6
    updates of the run and dropped every later segment."""
    config = make_experiment_config(
        "a2c", "gym:CartPole-v1", seed=0, max_env_steps=3_000,
        agent_overrides=["hidden_sizes=32,32", "envs_per_actor=2", "log_every=10", "max_policy_lag=5"],
        eval_every=10_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.25))
    assert summary["distributed"]["publish_period"] == 2
    assert summary["learner_steps"] >= 30, summary["distributed"]


def test_ddpg_actors_explore_at_their_own_noise_scales(ray_session, tmp_path):
    """Two DDPG actors: actor 0 acts with 2x noise_sigma, actor 1 with 0.5x (``actor_noise_scales='spread'``),
    as reported by the policies inside the actor processes."""
    config = make_experiment_config(
        "ddpg", "gym:Pendulum-v1", seed=0, max_env_steps=1_000,
        agent_overrides=["min_replay_size=200", "batch_size=32", "actor_hidden_sizes=16", "critic_hidden_sizes=16",
                         "samples_per_insert=4", "noise_sigma=0.1"],
        eval_every=10_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    dist = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.25))["distributed"]
    assert dist["actor_exploration"] == [pytest.approx(2.0), pytest.approx(0.5)]
    # Pendulum's torque bounds are [-2, 2]: half-range 2, so sigma = scale * 0.1 * 2.
    noises = dist["actor_policy_exploration"]
    assert [n["kind"] for n in noises] == ["gaussian", "gaussian"]
    assert [n["sigma"] for n in noises] == [[pytest.approx(0.4)], [pytest.approx(0.1)]]


def test_one_dqn_actor_follows_the_configured_epsilon_schedule(ray_session, tmp_path):
    """With one actor (what the main command gets on a 2-CPU machine) DQN's actor decays epsilon
    as configured instead of keeping Ape-X's 0.4; the summary shows the schedule and where it got to."""
    config = make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=1_000,
        agent_overrides=[*SMALL_DQN, "epsilon_start=0.8", "epsilon_end=0.2", "epsilon_decay_steps=300"],
        eval_every=10_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=1, poll_interval_s=0.25))
    dist = summary["distributed"]
    assert dist["actor_exploration"] == [None]
    (state,) = dist["actor_policy_exploration"]
    assert state["kind"] == "epsilon_greedy"
    assert (state["epsilon_start"], state["epsilon_end"], state["decay_steps"]) == (0.8, 0.2, 300)
    assert state["steps"] >= 300 and state["epsilon"] == pytest.approx(0.2)
    assert json.loads((Path(summary["run_dir"]) / "summary.json").read_text())["distributed"][
        "actor_policy_exploration"] == [state]


def _metric_names(run_dir: Path) -> set[str]:
    with open(run_dir / "metrics.csv") as f:
        return {row["metric"] for row in csv.DictReader(f)}


def test_local_mode_logs_the_metrics_the_debug_mode_logs(ray_session, tmp_path):
    """The same metric names in both modes (the distributed run adds its own distributed/* rows)."""
    from distrl.experiments import run_local

    def config(name: str):
        return make_experiment_config(
            "dqn", "gym:CartPole-v1", seed=0, max_env_steps=1_500, agent_overrides=SMALL_DQN,
            eval_every=1_000, eval_episodes=1, run_dir=str(tmp_path / name), progress=False,
        )

    debug = _metric_names(Path(run_local(config("debug"))["run_dir"]))
    local = _metric_names(Path(run_distributed(config("local"), DistributedConfig(num_actors=1))["run_dir"]))
    assert {"charts/episodic_return", "charts/episodic_length", "charts/SPS", "losses/td_loss",
            "eval/episodic_return", "eval/episodes_cut"} <= debug
    assert debug == {name for name in local if not name.startswith("distributed/")}


def test_time_budget_bounds_the_final_evaluation(ray_session, tmp_path):
    """A greedy policy in a GridWorld without a time limit, with an evaluation cap far too large
    to reach: the run still ends soon after its time budget (the final evaluation may take 10%
    of it, at least 5 s), and the summary says the time budget ended it."""
    config = make_experiment_config(
        "dqn", "gridworld:simple?max_episode_len=none", seed=0, max_env_steps=10_000_000,
        agent_overrides=["n_step=1", "min_replay_size=64", "batch_size=32", "hidden_sizes=16", "samples_per_insert=4"],
        eval_every=10_000_000, eval_episodes=3, eval_max_episode_steps=10**9, run_dir=str(tmp_path), progress=False,
    )
    import time

    start = time.monotonic()
    summary = run_distributed(config, DistributedConfig(num_actors=1, time_budget_s=8.0, poll_interval_s=0.25))
    assert time.monotonic() - start < 8.0 + 5.0 + 25.0  # budget + final evaluation allowance + start and stop
    assert summary["end_reason"] == "time_budget" and summary["status"] == "completed"
    assert summary["evaluations"]  # the final evaluation ran, cut if the policy never reaches the goal


def _http_status(host: str, port: int) -> int | None:
    """The HTTP status a plain GET / gets (no token), None when the port does not speak HTTP."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status
    except (http.client.HTTPException, OSError):
        return None
    finally:
        connection.close()


def test_local_mode_leaves_no_http_endpoint_that_answers_without_the_token(tmp_path):
    """The issue found three Prometheus endpoints of a local run answering anyone on 0.0.0.0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "distrl", "train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--mode", "local",
         "--num-actors", "1", "--max-env-steps", "1000000", "--no-progress", "--checkpoint-every-s", "1",
         "--run-dir", str(tmp_path), *[a for s in SMALL_DQN for a in ("--set", s)]],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not list(tmp_path.glob("*/checkpoints/ckpt-*")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(tmp_path.glob("*/checkpoints/ckpt-*")), "the local run did not get going"
        listening = set()
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                connections = child.net_connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            listening |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
        assert listening
        answered = {}
        for ip, port in sorted(listening):
            host = "127.0.0.1" if ip in ("0.0.0.0", "::", "") else ip
            status = _http_status(host, port)
            if status is not None and status not in (401, 403):
                answered[f"{ip}:{port}"] = status
        assert not answered, f"HTTP endpoints answering without the token: {answered}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


@pytest.mark.parametrize(
    "agent, overrides, budget, expected",
    [
        # A low replay ratio leaves the actors unthrottled: the driver alone, a poll late, overshot by thousands.
        ("dqn", [*SMALL_DQN, "samples_per_insert=0.5", "target_update_period=20"], 3_001, 3_001),
        # Two environments per actor step in pairs: shares of 1,501 and 1,500 end at 1,500 each.
        ("a2c", ["hidden_sizes=32,32", "envs_per_actor=2"], 3_001, 3_000),
    ],
)
def test_the_env_step_budget_holds_in_local_mode(ray_session, tmp_path, agent, overrides, budget, expected):
    config = make_experiment_config(
        agent, "gym:CartPole-v1", seed=0, max_env_steps=budget, agent_overrides=overrides,
        eval_every=budget, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    summary = run_distributed(config, DistributedConfig(num_actors=2, poll_interval_s=0.5))
    assert summary["env_steps"] == expected, summary["distributed"]
    assert summary["end_reason"] == "budget"


def test_an_actor_at_its_step_limit_sends_the_inserts_it_held(ray_session, tmp_path):
    """With ``min_insert_interval_s`` the replay client holds batches between calls. An actor that
    reaches its share of the budget idles, and sends what it held then (``send_held``), not only
    when the run stops: its client holds nothing and every transition it took is in the replay.
    The interval (1 s) is longer than the actor's acting here, so after its first call every batch
    is held until the merge limit sends it, and something is held when it reaches the limit;
    without ``send_held`` that stayed held until the actor stopped."""
    config = make_experiment_config(
        "dqn", "gym:CartPole-v1", seed=0, max_env_steps=3_000,
        agent_overrides=[*SMALL_DQN, "samples_per_insert=0.5", "target_update_period=20"],
        eval_every=3_000, eval_episodes=1, run_dir=str(tmp_path), progress=False,
    )
    seen: dict = {}

    def on_poll(state):
        stats = state.actor_stats[0]
        if stats is None or not stats["at_step_limit"]:
            return False
        deadline = time.monotonic() + 30.0
        while True:
            stats = ray.get(state.actors[0].stats.remote())
            inserts = ray.get(state.replay_server.info.remote("transitions"))["inserts"]
            if (stats["items_held"] == 0 and inserts == stats["items_inserted"]) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        seen.update(inserts=inserts, items_inserted=stats["items_inserted"], items_held=stats["items_held"],
                    env_steps=stats["env_steps"])
        return True

    run_distributed(config, DistributedConfig(num_actors=1, poll_interval_s=0.25, min_insert_interval_s=1.0),
                    on_poll=on_poll)
    assert seen, "the actor never reported reaching its step limit"
    assert seen["env_steps"] == 3_000
    assert seen["items_held"] == 0 and seen["inserts"] == seen["items_inserted"], seen
    # The adder's own partial batch (< adder_batch_size) and n-step window (< n) are all that is not inserted.
    assert seen["items_inserted"] >= seen["env_steps"] - config.agent_config.adder_batch_size - config.agent_config.n_step
