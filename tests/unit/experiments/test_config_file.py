"""``distrl train --config FILE``: the shipped configs, precedence of flags, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from distrl.cli import build_experiment_config, main, parse_args

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIGS = REPO_ROOT / "launch" / "configs"


def _experiment(*argv: str):
    return build_experiment_config(parse_args(["train", *argv]))


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "name, agent, env, max_env_steps, eval_every, agent_fields",
    [
        ("dqn_cartpole", "dqn", "gym:CartPole-v1", 50_000, 2_500, {"n_step": 3}),
        ("dqn_gridworld", "dqn", "gridworld:obstacle", 10_000, 5_000, {"n_step": 1}),
        ("ddpg_pendulum", "ddpg", "gym:Pendulum-v1", 25_000, 2_500, {"n_step": 3}),
        ("a2c_cartpole", "a2c", "gym:CartPole-v1", 100_000, 5_000, {"envs_per_actor": 4}),
        ("dqn_atari", "dqn", "atari:Pong", 10_000_000, 250_000, {"hidden_sizes": (), "samples_per_insert": 8.0}),
        ("apex_dqn_cartpole", "dqn", "gym:CartPole-v1", 100_000, 5_000,
         {"envs_per_actor": 8, "batch_size": 256, "prioritized": True, "actor_priorities": True}),
    ],
)
def test_shipped_config_builds_the_measured_experiment(name, agent, env, max_env_steps, eval_every, agent_fields):
    config = _experiment("--config", str(CONFIGS / f"{name}.yaml"))
    assert (config.agent, config.env, config.seed) == (agent, env, 0)
    assert (config.max_env_steps, config.eval_every) == (max_env_steps, eval_every)
    for field, value in agent_fields.items():
        assert getattr(config.agent_config, field) == value


def test_flags_override_the_file(tmp_path):
    path = _write(tmp_path, "agent: dqn\nenv: gym:CartPole-v1\nseed: 3\nmax_env_steps: 4000\nno_progress: true\n")
    config = _experiment("--config", path, "--seed", "7")
    assert (config.seed, config.max_env_steps, config.progress) == (7, 4000, False)
    assert _experiment("--config", path, "--env", "gridworld:simple").env == "gridworld:simple"


def test_set_overrides_agent_config(tmp_path):
    path = _write(tmp_path, "agent: dqn\nenv: gym:CartPole-v1\nagent_config:\n"
                            "  n_step: 1\n  learning_rate: 1e-3\n  hidden_sizes: [32, 16]\n  max_grad_norm: null\n")
    config = _experiment("--config", path, "--set", "n_step=5")
    assert config.agent_config.n_step == 5
    assert config.agent_config.learning_rate == 1e-3
    assert config.agent_config.hidden_sizes == (32, 16)
    assert config.agent_config.max_grad_norm is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_steps: 100\n", "unknown key 'max_steps'"),
        ("agent_config:\n  n_stp: 1\n", "agent_config: unknown dqn config key 'n_stp'"),
        ("agent_config:\n  n_step: -2\n", "agent_config: Config.n_step must be a finite number > 0, got -2"),
        ("agent_config:\n  n_step: 1.5\n", "n_step: expected an integer, got '1.5'"),
        ("agent_config:\n  double_q: maybe\n", "double_q: expected a boolean"),
        ("seed: one\n", "seed must be of type int, got 'one'"),
        ("mode: fast\n", "mode must be one of debug, local, cluster, got 'fast'"),
        ("no_progress: 3\n", "no_progress must be true or false, got 3"),
    ],
)
def test_bad_file_exits_2_naming_file_key_and_value(tmp_path, capsys, text, message):
    path = _write(tmp_path, "agent: dqn\nenv: gym:CartPole-v1\n" + text)
    assert main(["train", "--config", path]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert path in error


def test_out_of_range_option_names_key_value_and_file(tmp_path, capsys):
    path = _write(tmp_path, "agent: dqn\nenv: gym:CartPole-v1\nmax_env_steps: -5\n")
    assert main(["train", "--config", path]) == 2
    error = capsys.readouterr().err
    assert "max_env_steps must be a positive integer, got -5" in error and path in error


def test_missing_file_exits_2(tmp_path, capsys):
    path = str(tmp_path / "nope.yaml")
    assert main(["train", "--config", path]) == 2
    assert f"cannot read config file {path}" in capsys.readouterr().err


def test_agent_and_env_are_still_required(tmp_path, capsys):
    path = _write(tmp_path, "env: gym:CartPole-v1\n")
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["train", "--config", path])
    assert exit_info.value.code == 2
    assert "required: --agent" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["train", "--agent", "dqn"])
    assert "required: --env" in capsys.readouterr().err
