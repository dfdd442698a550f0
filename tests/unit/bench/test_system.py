"""The system benchmark's pieces that need no Ray: raw env rate, report, option errors."""

from __future__ import annotations

import pytest

from distrl.bench import BENCHMARKS, system


def test_registered():
    assert BENCHMARKS["system"] == "distrl.bench.system"


def test_raw_env_rate_is_positive():
    assert system.raw_env_steps_per_s("CartPole-v1", seconds=0.05) > 1_000


def test_report_has_one_line_per_profile_and_actor_count_with_ratios():
    rows = [
        system.Row(1, 300.0, [300.0], 150.0, 0.02, 0.8, "learner", "default", 40.0),
        system.Row(2, 500.0, [260.0, 240.0], 250.0, 0.3, 0.1, "actors/replay", "default", 12.5),
        system.Row(2, 9_000.0, [4_500.0, 4_500.0], 70.0, 0.5, 0.0, "actors/replay", "unthrottled", 3.0),
    ]
    lines = system.format_report(rows, raw_rate=100_000.0, env="gym:CartPole-v1", seconds=5, cpus=2,
                                 torch_rate=500.0).splitlines()
    assert "raw single-process env: 100,000 steps/s" in lines[0] and "bare torch DQN update: 500 updates/s" in lines[0]
    assert all(name in lines[1] for name in ("x raw env", "x torch", "efficiency", "weight lag"))
    first = lines[2].split()
    assert first[:3] == ["default", "1", "300"] and first[4] == "1.00" and first[6] == "0.30"  # 150 of 500
    assert "0.003" in lines[2] and "40.0" in lines[2] and lines[2].endswith("learner")
    assert "260, 240" in lines[3] and "0.83" in lines[3]  # 250 per actor against 300 alone
    assert lines[3].endswith("actors/replay")
    assert lines[4].split()[:2] == ["unthrottled", "2"] and " - " in lines[4]  # No one-actor row to compare.


def test_per_actor_efficiency_compares_within_a_profile():
    rows = [system.Row(1, 1000.0, [1000.0], 1.0, 0, 0, "x", "unthrottled"),
            system.Row(2, 1500.0, [750.0, 750.0], 1.0, 0, 0, "x", "unthrottled"),
            system.Row(2, 600.0, [300.0, 300.0], 1.0, 0, 0, "x", "default")]
    assert system.per_actor_efficiency(rows) == [1.0, 0.75, None]


@pytest.mark.parametrize("argv", [["--actors", "0"], ["--actors", "a,b"], ["--env", "gridworld:simple"],
                                  ["--profiles", "fast"], ["--distributed-set", "publish_period=0"],
                                  ["--distributed-set", "no_such_field=1"], ["--distributed-set", "num_actors=2"],
                                  ["--distributed-set", "time_budget_s=5"]])
def test_bad_options_exit_with_usage_error(argv):
    with pytest.raises(SystemExit) as error:
        system.main(argv)
    assert error.value.code == 2


def test_the_bare_torch_update_runs_the_configured_network():
    from distrl.bench.torch_reference import pure_dqn_updates_per_s

    assert pure_dqn_updates_per_s("gym:CartPole-v1", ["hidden_sizes=16,16"], seconds=0.2) > 50
    # An image task takes the same path (uint8 frames through the CNN).
    assert pure_dqn_updates_per_s("distrl.envs.image_tasks:channels_last", ["batch_size=8"], seconds=0.2) > 1
