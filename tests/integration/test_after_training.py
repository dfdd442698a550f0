"""After ``train``, as a user would do it from the command line: evaluate (and reproduce the recorded
return), record videos, plot, look up hyperparameters, rerun a run from its own config.json, load
the policy in Python; and errors that tell a failed run from a bad configuration."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

SMALL = {
    "dqn": ("gym:CartPole-v1", ["--set", "min_replay_size=200", "--set", "hidden_sizes=32,32"]),
    "ddpg": ("gym:Pendulum-v1", ["--set", "min_replay_size=200", "--set", "actor_hidden_sizes=32",
                                 "--set", "critic_hidden_sizes=32"]),
    "a2c": ("gym:CartPole-v1", ["--set", "hidden_sizes=32"]),
}


def _run_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p.parent for p in (tmp_path / "runs").glob("*/summary.json"))


@pytest.mark.parametrize("agent", ["dqn", "ddpg", "a2c"])
def test_evaluate_reproduces_the_recorded_returns(run_cli, tmp_path, agent):
    default_env, overrides = SMALL[agent]
    trained = run_cli("train", "--agent", agent, "--env", default_env, "--max-env-steps", "2000",
                      "--eval-every", "1000", "--eval-episodes", "3", "--no-progress", "--run-dir", "runs", *overrides)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    for which, key in (("best", "best_eval_return"), ("final", "final_eval_return")):
        result = run_cli("evaluate", str(run_dir), "--which", which)
        assert result.returncode == 0, result.stderr[-3000:]
        record = json.loads((run_dir / "evaluation.json").read_text())
        assert record["episodes"] == 3 and record["which"] == which
        assert record["return_mean"] == pytest.approx(summary[key], rel=1e-9, abs=1e-9), (which, record)
        assert "the run recorded" in result.stdout and "+-" in result.stdout
    # Another seed, more episodes, an explicit output file.
    result = run_cli("evaluate", str(run_dir / "best_policy.pt"), "--episodes", "2", "--seed", "5",
                     "--out", "other.json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "other.json").read_text())["episodes"] == 2


@pytest.mark.parametrize("env, extra", [("gym:CartPole-v1", []), ("gridworld:simple", ["--set", "n_step=1"])])
def test_evaluate_records_videos(run_cli, tmp_path, env, extra):
    trained = run_cli("train", "--agent", "dqn", "--env", env, "--max-env-steps", "600", "--eval-every", "600",
                      "--eval-episodes", "1", "--no-progress", "--run-dir", "runs", "--set", "min_replay_size=200",
                      "--set", "hidden_sizes=16", *extra)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    result = run_cli("evaluate", str(run_dir), "--episodes", "2", "--video", "videos", "--max-episode-steps", "60")
    assert result.returncode == 0, result.stderr[-3000:]
    videos = sorted((tmp_path / "videos").glob("episode-*.mp4"))
    assert [v.name for v in videos] == ["episode-0.mp4", "episode-1.mp4"]
    assert all(v.stat().st_size > 1000 for v in videos)


def test_evaluate_names_what_is_missing(run_cli, tmp_path):
    result = run_cli("evaluate", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere not found" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("evaluate", str(tmp_path / "empty"))
    assert result.returncode == 2 and "best_policy.pt not found" in result.stderr


def test_plot_three_seeds_writes_a_png_and_a_table(run_cli, tmp_path):
    for seed in ("0", "1", "2"):
        trained = run_cli("train", "--agent", "a2c", "--env", "gym:CartPole-v1", "--seed", seed, "--max-env-steps",
                          "1500", "--eval-every", "500", "--eval-episodes", "2", "--no-progress", "--run-dir", "runs",
                          "--set", "hidden_sizes=16")
        assert trained.returncode == 0, trained.stderr[-3000:]
    result = run_cli("plot", "runs", "--out", "curves.png")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert sum("gym_CartPole-v1__a2c__" in line for line in result.stdout.splitlines()) == 3


def test_hyperparameters_can_be_looked_up(run_cli):
    listed = run_cli("train", "--agent", "dqn", "--help")
    assert listed.returncode == 0
    assert "learning_rate (float, default 0.0023)" in listed.stdout and "Adam step size." in listed.stdout
    assert "(default: 50000)" in listed.stdout  # --help shows every option's default.
    config = run_cli("config", "ddpg")
    assert config.returncode == 0 and "noise_sigma (float, default 0.2)" in config.stdout
    bench = run_cli("bench", "--help")
    assert bench.returncode == 0 and "replay-atari" in bench.stdout


def test_a_run_can_be_rerun_from_its_own_config_json(run_cli, tmp_path):
    trained = run_cli("train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "1500",
                      "--eval-every", "750", "--eval-episodes", "2", "--no-progress", "--run-dir", "runs",
                      "--set", "min_replay_size=200", "--set", "learning_rate=1e-3", "--seed", "3")
    assert trained.returncode == 0, trained.stderr[-3000:]
    (first,) = _run_dirs(tmp_path)
    again = run_cli("train", "--config", str(first / "config.json"))
    assert again.returncode == 0, again.stderr[-3000:]
    second = [d for d in _run_dirs(tmp_path) if d != first][0]
    one, two = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert two["seed"] == 3 and two["env_steps"] == 1500
    assert [e["return_mean"] for e in two["evaluations"]] == [e["return_mean"] for e in one["evaluations"]]


def test_python_api_trains_and_returns_the_policy(tmp_path):
    import numpy as np

    import distrl

    result = distrl.train("dqn", "gym:CartPole-v1", max_env_steps=1500, eval_every=750, eval_episodes=2,
                          run_dir=str(tmp_path), min_replay_size=200, hidden_sizes=(16,))
    assert result.summary["env_steps"] == 1500 and result.run_dir.exists()
    action = result.policy(np.zeros(4, np.float32))
    assert int(action) in (0, 1)
    loaded = distrl.load_policy(result.run_dir)
    assert loaded.evaluate().returns.mean() == pytest.approx(result.summary["best_eval_return"])
    with pytest.raises(distrl.ConfigError, match="unknown field 'learning_rat'"):
        distrl.train("dqn", "gym:CartPole-v1", learning_rat=1e-3)


FAULTY_ENVS = textwrap.dedent('''
    """A user's dm_env that fails at its 50th step, by raising or by returning a NaN observation."""
    import dm_env
    import numpy as np
    from dm_env import specs


    class Faulty(dm_env.Environment):
        def __init__(self, nan):
            self.nan, self.t = nan, 0

        def reset(self):
            return dm_env.restart(np.zeros(2, np.float32))

        def step(self, action):
            self.t += 1
            if self.t == 50 and not self.nan:
                raise ConnectionError("simulator lost contact with the plant")
            value = np.float32("nan") if self.t == 50 else np.float32(0.0)
            return dm_env.transition(np.float32(1.0), np.array([value, 0.0], np.float32), np.float32(1.0))

        def observation_spec(self):
            return specs.Array((2,), np.float32, "observation")

        def action_spec(self):
            return specs.DiscreteArray(2, name="action")

        def reward_spec(self):
            return specs.Array((), np.float32, "reward")

        def discount_spec(self):
            return specs.BoundedArray((), np.float32, 0.0, 1.0, "discount")


    def raises(seed):
        return Faulty(nan=False)


    def returns_nan(seed):
        return Faulty(nan=True)
''')


@pytest.mark.parametrize("factory, message", [("raises", "simulator lost contact with the plant"),
                                              ("returns_nan", "non-finite value")])
def test_a_failing_environment_is_a_training_failure_not_a_configuration_error(
    run_cli, tmp_path, monkeypatch, factory, message
):
    (tmp_path / "faulty_envs.py").write_text(FAULTY_ENVS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = run_cli("train", "--agent", "dqn", "--env", f"faulty_envs:{factory}", "--max-env-steps", "500",
                     "--set", "min_replay_size=100", "--no-progress", "--run-dir", "runs")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "configuration error" not in result.stderr
    assert "Traceback" in result.stderr and message in result.stderr
    assert "step 50 of an episode of 'faulty_envs:" in result.stderr
    assert "faulty_envs.py" in result.stderr or factory == "returns_nan"
    (run_dir,) = _run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["env_steps"] == 49 and message in summary["error"]["message"]
    assert (run_dir / "metrics.csv").exists()


def test_configuration_errors_still_exit_2_before_anything_runs(run_cli, tmp_path):
    result = run_cli("train", "--agent", "dqn", "--env", "gym:Pendulum-v1", "--no-progress", "--run-dir", "runs")
    assert result.returncode == 2 and "configuration error: agent 'dqn' cannot run on environment" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_evaluation_of_an_endless_environment_ends(run_cli, tmp_path):
    """GridWorld without a time limit: a briefly trained greedy policy may walk into a wall
    forever; the evaluation's step cap ends it and the summary counts the cut episodes."""
    result = run_cli("train", "--agent", "dqn", "--env", "gridworld:simple?max_episode_len=none",
                     "--max-env-steps", "300", "--eval-episodes", "1", "--eval-max-episode-steps", "500",
                     "--set", "n_step=1", "--set", "min_replay_size=64", "--set", "target_update_period=50",
                     "--no-progress", "--run-dir", "runs",
                     timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    final = json.loads((run_dir / "summary.json").read_text())["evaluations"][-1]
    assert final["length_mean"] <= 500 and final["episodes_cut"] in (0, 1)


def test_wandb_logs_offline(run_cli, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    result = run_cli("train", "--agent", "dqn", "--env", "gym:CartPole-v1", "--max-env-steps", "600",
                     "--eval-every", "600", "--eval-episodes", "1", "--no-progress", "--run-dir", "runs",
                     "--set", "min_replay_size=200", "--wandb-project", "distrl-test")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    (offline,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    assert offline.stat().st_size > 0
