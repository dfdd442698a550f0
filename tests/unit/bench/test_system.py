"""The system benchmark's pieces that need no Ray: raw env rate, report, option errors."""

from __future__ import annotations

import pytest

from distrl.bench import BENCHMARKS, system


def test_registered():
    assert BENCHMARKS["system"] == "distrl.bench.system"


def test_raw_env_rate_is_positive():
    assert system.raw_env_steps_per_s("CartPole-v1", seconds=0.05) > 1_000


def test_report_has_one_line_per_actor_count_with_ratio():
    rows = [
        system.Row(1, 300.0, [300.0], 150.0, 0.02, 0.8, "learner"),
        system.Row(2, 500.0, [260.0, 240.0], 250.0, 0.3, 0.1, "actors/replay"),
    ]
    lines = system.format_report(rows, raw_rate=100_000.0, env="gym:CartPole-v1", seconds=5, cpus=2,
                                 torch_rate=500.0).splitlines()
    assert "raw single-process env: 100,000 steps/s" in lines[0] and "bare torch DQN update: 500 updates/s" in lines[0]
    assert "x raw env" in lines[1] and "x torch" in lines[1]
    assert lines[2].split()[:2] == ["1", "300"] and "0.003" in lines[2] and lines[2].endswith("learner")
    assert lines[2].split()[4] == "0.30"  # 150 of the 500 updates/s torch allows
    assert "260, 240" in lines[3] and lines[3].endswith("actors/replay")


@pytest.mark.parametrize("argv", [["--actors", "0"], ["--actors", "a,b"], ["--env", "gridworld:simple"]])
def test_bad_options_exit_with_usage_error(argv):
    with pytest.raises(SystemExit) as error:
        system.main(argv)
    assert error.value.code == 2


def test_the_bare_torch_update_runs_the_configured_network():
    from distrl.bench.torch_reference import pure_dqn_updates_per_s

    assert pure_dqn_updates_per_s("gym:CartPole-v1", ["hidden_sizes=16,16"], seconds=0.2) > 50
    # An image task takes the same path (uint8 frames through the CNN).
    assert pure_dqn_updates_per_s("distrl.envs.image_tasks:channels_last", ["batch_size=8"], seconds=0.2) > 1
