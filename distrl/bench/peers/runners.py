"""One training run of one framework on one task, in its own process.

``python -m distrl.bench.peers.runners FRAMEWORK TASK SEED OUT.json [--mode debug|local]``
trains under the protocol of ``protocol.py`` and writes the run's record:
``solved`` (env steps and training seconds at the first evaluation at or
above the threshold, or null), every evaluation, and the settings used. The
peers run with their own published tuned settings:

* stable-baselines3 DQN and A2C on CartPole-v1, DDPG on Pendulum: the
  rl-baselines3-zoo hyperparameter files (``hyperparams/dqn.yml``,
  ``a2c.yml``, ``ddpg.yml``), with the zoo's ``n_timesteps`` as the
  schedule length the exploration fraction refers to.
* Tianshou DDPG on Pendulum-v1: the settings of Tianshou's own DDPG test
  (``test/continuous/test_ddpg.py``: 128-128 networks, actor/critic learning
  rates 1e-4/1e-3, tau 0.005, Gaussian noise 0.1, 3-step returns, 8 training
  environments, 8 env steps per collect with 0.125 updates per step, batch
  128, a 20,000-transition buffer), trained by its ``OffPolicyTrainer``.

distrl runs with its defaults through ``distrl.train``; its evaluations are
its own (the same count and fixed start states per run), and a debug-mode
run's evaluation time (``duration_s`` of each) is taken out of its clock as
for the peers. In local mode the driver evaluates while actors and learner
go on, so the run's wall-clock is used as it is. distrl's periodic checkpoints
are off (the peers write none); the final one at the end of a run is after
the clock that counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from typing import Any, Sequence

import numpy as np
import torch

from distrl.bench.peers.protocol import EVAL_EPISODES, TASKS, SolveClock, Task, greedy_returns, reset_to_start

SB3_DQN_CARTPOLE = dict(  # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 ("almost tuned")
    learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
    exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))
SB3_DQN_ZOO_TIMESTEPS = 50_000  # the zoo's n_timesteps for it, which exploration_fraction is a fraction of
SB3_A2C_CARTPOLE = dict(ent_coef=0.0)  # rl-baselines3-zoo hyperparams/a2c.yml, CartPole-v1, 8 envs
SB3_A2C_ENVS = 8
SB3_DDPG_PENDULUM = dict(  # rl-baselines3-zoo hyperparams/ddpg.yml, Pendulum ("tuned")
    gamma=0.98, buffer_size=200_000, learning_starts=10_000, gradient_steps=-1, train_freq=(1, "episode"),
    learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]))
SB3_DDPG_NOISE_STD = 0.1
TIANSHOU_DDPG_PENDULUM = dict(  # Tianshou test/continuous/test_ddpg.py
    buffer_size=20_000, actor_lr=1e-4, critic_lr=1e-3, gamma=0.99, tau=0.005, exploration_noise=0.1,
    step_per_collect=8, update_per_step=0.125, batch_size=128, hidden_sizes=(128, 128), training_num=8,
    n_step=3)


def training_clock(evaluations: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The protocol's ``train_s`` of each of a distrl run's evaluation records (``env_steps``,
    ``wall_clock_s`` at the end of the evaluation, its ``duration_s``, ``return_mean``): in debug
    mode the wall-clock less every evaluation so far, since the single process pauses while it
    evaluates; in a distributed mode the wall-clock less this evaluation alone, since the run
    trains on while the driver evaluates and the evaluated weights were taken at its start."""
    records, paused = [], 0.0
    for record in evaluations:
        evaluating_s = record.get("duration_s", 0.0)
        paused = paused + evaluating_s if mode == "debug" else evaluating_s
        records.append({"env_steps": record["env_steps"], "train_s": round(record["wall_clock_s"] - paused, 3),
                        "return_mean": record["return_mean"]})
    return records


def run_distrl(task: Task, seed: int, mode: str) -> dict[str, Any]:
    import distrl

    def solved(record: dict) -> bool:
        return record["return_mean"] >= task.threshold

    with tempfile.TemporaryDirectory(prefix="distrl-peers-") as run_dir:
        result = distrl.train(
            task.agent, task.distrl_env_name, mode=mode, seed=seed, max_env_steps=task.max_env_steps,
            eval_every=task.eval_every, eval_episodes=10, reward_threshold=task.threshold, run_dir=run_dir,
            on_evaluation=solved, checkpoint_every_s=None)
    evaluations = training_clock(result.summary["evaluations"], mode)
    first = next((e for e in evaluations if e["return_mean"] >= task.threshold), None)
    return {"solved": first, "evaluations": evaluations, "settings": "distrl defaults"}


def sb3_evaluations(task: Task, seed: int, clock: SolveClock):
    """An SB3 callback that evaluates every ``task.eval_every`` env steps (all envs together)
    and stops training at the first evaluation that reaches the threshold."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Evaluations(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_evaluation = task.eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_evaluation:
                return True
            self.next_evaluation += task.eval_every
            with clock.evaluating():
                returns = greedy_returns(task.env_id, lambda obs: self.model.predict(obs, deterministic=True)[0], seed)
            return not clock.record(self.num_timesteps, float(np.mean(returns)))

    return Evaluations()


def run_sb3(task: Task, seed: int) -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3 import A2C, DDPG, DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    if task.agent == "dqn":
        # SB3 decays epsilon over exploration_fraction x total_timesteps: keep the zoo's 8,000 env steps
        # whatever the budget (a longer one for --peer-budget-factor must not slow the decay).
        decay_steps = SB3_DQN_CARTPOLE["exploration_fraction"] * SB3_DQN_ZOO_TIMESTEPS
        settings = {**SB3_DQN_CARTPOLE, "exploration_fraction": min(1.0, decay_steps / task.max_env_steps)}
        model = DQN("MlpPolicy", gym.make(task.env_id), seed=seed, verbose=0, **settings)
    elif task.agent == "a2c":
        settings = {**SB3_A2C_CARTPOLE, "n_envs": SB3_A2C_ENVS}
        env = make_vec_env(task.env_id, n_envs=SB3_A2C_ENVS, seed=seed)
        model = A2C("MlpPolicy", env, seed=seed, verbose=0, **SB3_A2C_CARTPOLE)
    else:
        env = gym.make(task.env_id)
        noise = NormalActionNoise(np.zeros(env.action_space.shape), SB3_DDPG_NOISE_STD * np.ones(env.action_space.shape))
        settings = {**SB3_DDPG_PENDULUM, "noise_std": SB3_DDPG_NOISE_STD}
        model = DDPG("MlpPolicy", env, action_noise=noise, seed=seed, verbose=0, **SB3_DDPG_PENDULUM)
    clock = SolveClock(task.threshold)
    clock.start()
    # The budget is the task's (or the peers' longer one); only DQN's exploration has a schedule (above).
    model.learn(total_timesteps=task.max_env_steps, callback=sb3_evaluations(task, seed, clock))
    return {"solved": clock.solved, "evaluations": clock.evaluations, "settings": _jsonable(settings)}


def run_tianshou(task: Task, seed: int) -> dict[str, Any]:
    import gymnasium as gym
    from tianshou.algorithm import DDPG
    from tianshou.algorithm.modelfree.ddpg import ContinuousDeterministicPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.exploration import GaussianNoise
    from tianshou.trainer import OffPolicyTrainerParams
    from tianshou.utils.net.common import Net
    from tianshou.utils.net.continuous import ContinuousActorDeterministic, ContinuousCritic

    if task.agent != "ddpg":
        raise ValueError(f"the Tianshou runner has settings for ddpg only, not {task.agent}")
    s = TIANSHOU_DDPG_PENDULUM

    class FixedStart(gym.Wrapper):
        """Every reset of this test env starts from the same state (one of the run's eval seeds)."""

        def __init__(self, env: gym.Env, episode: int) -> None:
            super().__init__(env)
            self.episode = episode

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            return reset_to_start(self.env, run_seed, self.episode), {}

    env = gym.make(task.env_id)
    train_envs = DummyVectorEnv([lambda: gym.make(task.env_id) for _ in range(s["training_num"])])
    run_seed = seed
    test_envs = DummyVectorEnv([lambda episode=episode: FixedStart(gym.make(task.env_id), episode)
                                for episode in range(EVAL_EPISODES)])
    np.random.seed(seed)
    torch.manual_seed(seed)
    train_envs.seed(seed)
    max_action = float(env.action_space.high[0])
    actor = ContinuousActorDeterministic(
        preprocess_net=Net(state_shape=env.observation_space.shape, hidden_sizes=s["hidden_sizes"]),
        action_shape=env.action_space.shape, max_action=max_action)
    critic = ContinuousCritic(preprocess_net=Net(
        state_shape=env.observation_space.shape, action_shape=env.action_space.shape,
        hidden_sizes=s["hidden_sizes"], concat=True))
    policy = ContinuousDeterministicPolicy(
        actor=actor, exploration_noise=GaussianNoise(sigma=s["exploration_noise"]), action_space=env.action_space)
    algorithm = DDPG(policy=policy, policy_optim=AdamOptimizerFactory(lr=s["actor_lr"]), critic=critic,
                     critic_optim=AdamOptimizerFactory(lr=s["critic_lr"]), tau=s["tau"], gamma=s["gamma"],
                     n_step_return_horizon=s["n_step"])
    train_collector = Collector(algorithm, train_envs, VectorReplayBuffer(s["buffer_size"], len(train_envs)),
                                exploration_noise=True)
    test_collector = Collector(algorithm, test_envs)
    clock = SolveClock(task.threshold)
    collect = test_collector.collect

    def timed_collect(*args: Any, **kwargs: Any):
        with clock.evaluating():
            stats = collect(*args, **kwargs)
        clock.record(train_collector.collect_step, float(np.mean(stats.returns)))
        return stats

    test_collector.collect = timed_collect
    clock.start()
    algorithm.run_training(OffPolicyTrainerParams(
        training_collector=train_collector, test_collector=test_collector,
        max_epochs=task.max_env_steps // task.eval_every, epoch_num_steps=task.eval_every,
        collection_step_num_env_steps=s["step_per_collect"], test_step_num_episodes=EVAL_EPISODES,
        batch_size=s["batch_size"], update_step_num_gradient_steps_per_sample=s["update_per_step"],
        stop_fn=lambda score: score >= task.threshold, verbose=False, show_progress=False))
    evaluations = [e for e in clock.evaluations if e["env_steps"] > 0]  # the trainer's initial test is no evaluation
    first = next((e for e in evaluations if e["return_mean"] >= task.threshold), None)
    return {"solved": first, "evaluations": evaluations, "settings": _jsonable(s)}


def _jsonable(settings: dict) -> dict:
    return json.loads(json.dumps(settings, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distrl.bench.peers.runners")
    parser.add_argument("framework", choices=["distrl", "sb3", "tianshou"])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("seed", type=int)
    parser.add_argument("out")
    parser.add_argument("--mode", choices=["debug", "local"], default="debug")
    parser.add_argument("--max-env-steps", type=int, default=None, help="budget (default: the task's)")
    parser.add_argument("--eval-every", type=int, default=None, help="env steps (default: the task's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    task = TASKS[args.task]
    if args.max_env_steps is not None:
        task = dataclasses.replace(task, max_env_steps=args.max_env_steps)
    if args.eval_every is not None:
        task = dataclasses.replace(task, eval_every=args.eval_every)
    if args.framework == "distrl":
        record = run_distrl(task, args.seed, args.mode)
    elif args.framework == "sb3":
        record = run_sb3(task, args.seed)
    else:
        record = run_tianshou(task, args.seed)
    with open(args.out, "w") as f:
        json.dump({"framework": args.framework, "task": args.task, "seed": args.seed, "mode": args.mode, **record}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
