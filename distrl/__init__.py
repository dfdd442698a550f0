"""distrl: Acme-style distributed actor/learner reinforcement learning on PyTorch and Ray."""

__version__ = "0.1.0"
