"""The actor-efficiency benchmark's pieces that need no Ray: the reference loop, report, option errors."""

from __future__ import annotations

import pytest

from distrl.bench import BENCHMARKS, actor


def test_registered():
    assert BENCHMARKS["actor"] == "distrl.bench.actor"


@pytest.mark.parametrize("num_envs", [1, 3])
def test_reference_steps_the_runtime_envs_with_the_dqn_policy(tmp_path, num_envs):
    config = actor.make_config("gym:CartPole-v1", num_envs, ["hidden_sizes=16"], str(tmp_path))
    assert config.builder.envs_per_actor == num_envs
    assert config.agent_config.samples_per_insert == 0.01 and config.agent_config.epsilon_decay_steps == 0
    assert actor.reference_steps_per_s(config, seconds=0.1) > 500


def test_report_has_one_line_per_env_count_with_ratio_and_verdict():
    rows = [actor.Row(1, 40_000.0, 24_000.0, 0.0), actor.Row(8, 60_000.0, 24_000.0, 0.125)]
    assert rows[0].ratio == pytest.approx(0.6) and actor.Row(2, 0.0, 5.0, 0.0).ratio == 0.0
    lines = actor.format_report(rows, env="gym:CartPole-v1", seconds=5, cpus=2).splitlines()
    assert "dqn on gym:CartPole-v1, 5 s per measurement, 2 CPUs" in lines[0]
    assert lines[1].split() == ["envs", "reference", "steps/s", "actor", "steps/s", "ratio", "backpressure",
                                ">=", "0.5x"]
    assert lines[2].split() == ["1", "40,000", "24,000", "0.60", "0.0%", "yes"]
    assert lines[3].split() == ["8", "60,000", "24,000", "0.40", "12.5%", "NO"]


@pytest.mark.parametrize(
    "argv, message",
    [(["--envs-per-actor", "0,2"], "got '0,2'"), (["--envs-per-actor", "a"], "got 'a'"),
     (["--envs-per-actor", ""], "got ''"), (["--seconds", "0"], "--seconds must be"),
     (["--seconds", "inf"], "got inf"), (["--num-cpus", "1"], "--num-cpus must be >= 2"),
     (["--env", "gym:Pendulum-v1"], "DQN needs a Discrete action space"),
     (["--set", "no_such_field=1"], "no_such_field")],
)
def test_bad_options_exit_with_usage_error_naming_the_value(capsys, argv, message):
    with pytest.raises(SystemExit) as error:
        actor.main(argv)
    assert error.value.code == 2
    assert message in capsys.readouterr().err
