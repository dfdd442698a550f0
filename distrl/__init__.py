"""distrl: Acme-style distributed actor/learner reinforcement learning on PyTorch and Ray.

The Python API in five lines (``distrl.api``)::

    import distrl
    result = distrl.train("dqn", "gym:CartPole-v1", max_env_steps=20_000)
    action = result.policy(observation)
    policy = distrl.load_policy(result.run_dir)

Names load on first use, so ``import distrl`` is cheap and imports no torch or ray.
"""

from distrl.utils.lazy import lazy_attributes

__version__ = "0.1.0"

#: Public names and the module of this package that defines each.
_NAMES = {
    "train": "api",
    "TrainResult": "api",
    "load_policy": "experiments.saved_policy",
    "SavedPolicy": "experiments.saved_policy",
    "ExperimentConfig": "experiments.config",
    "make_experiment_config": "experiments.make",
    "run_local": "experiments.local",
    "make_environment": "envs.registry",
    "ConfigError": "errors",
    "TrainingError": "errors",
}

__getattr__ = lazy_attributes(__name__, _NAMES)

__all__ = ["__version__", *_NAMES]
