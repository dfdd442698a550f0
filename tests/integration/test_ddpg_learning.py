"""DDPG learning on Pendulum-v1 in the single-process mode."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- learning


def _run_pendulum(seed: int, max_env_steps: int, eval_every: int, tmp_path, **overrides):
    from distrl.experiments import make_experiment_config, run_local

    config = make_experiment_config(
        "ddpg", "gym:Pendulum-v1", seed=seed, max_env_steps=max_env_steps, agent_overrides=overrides,
        eval_every=eval_every, eval_episodes=10, reward_threshold=-200.0, run_dir=str(tmp_path), progress=False,
    )
    return run_local(config)


@pytest.mark.timeout(120)
def test_pendulum_improves_markedly_over_random_within_5k_steps(tmp_path) -> None:
    # A random policy scores about -1200, the initial near-zero actor about -1450;
    # seeds 0-4 score -550 to -140 after 5k steps (2k updates, about 10 s).
    summary = _run_pendulum(seed=0, max_env_steps=5_000, eval_every=5_000, tmp_path=tmp_path)
    assert summary["final_eval_return"] > -700, summary["evaluations"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pendulum_acceptance_every_seed_solved_within_20k_steps(solved_at_per_seed) -> None:
    """Issue 15's acceptance: each of seeds 0-2 reaches a mean greedy return of -200 over its
    10 fixed evaluation start states within 20k env steps, evaluating every 2k (measured:
    seeds 1 and 2 at 6k, seed 0, whose start states allow about -190 at best, at 12k)."""
    solved = solved_at_per_seed("ddpg", "gym:Pendulum-v1", max_env_steps=20_000, eval_every=2_000,
                                threshold=-200.0)
    assert all(at is not None for at in solved.values()), solved


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_ddpg_balances_dmc_cartpole(tmp_path) -> None:
    """DeepMind Control's cartpole-balance (dict observations, native dm_env): at least 2 of
    seeds 0-2 reach a mean return of 800 (of 1000) within 100k env steps. Seed 0 measured
    839.6 at 20k and 999.6 at 50k env steps."""
    pytest.importorskip("dm_control")
    from distrl.experiments import make_experiment_config, run_local

    solved = {}
    for seed in range(3):
        config = make_experiment_config(
            "ddpg", "dmc:cartpole-balance", seed=seed, max_env_steps=100_000, eval_every=10_000,
            eval_episodes=10, reward_threshold=800.0, run_dir=str(tmp_path / str(seed)), progress=False,
        )
        solved[seed] = run_local(config)["solved_at_env_steps"]
        if sum(at is not None for at in solved.values()) >= 2:
            break
    assert sum(at is not None for at in solved.values()) >= 2, solved
