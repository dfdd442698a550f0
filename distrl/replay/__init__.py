"""Replay: column-wise storage, samplers, Reverb-style rate limiters, tables and clients."""

from distrl.replay.client import GroupedInsertClient, LocalReplayClient, ReplayClient
from distrl.replay.frames import FramePool
from distrl.replay.rate_limiters import MinSize, Queue, RateLimiter, SampleToInsertRatio
from distrl.replay.samplers import FifoSampler, PrioritizedSampler, Sampled, Sampler, UniformSampler
from distrl.replay.storage import ArrayStorage
from distrl.replay.sum_tree import SumTree
from distrl.replay.table import DEFAULT_TIMEOUT_S, Table
from distrl.types import SampleBatch

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ArrayStorage",
    "FifoSampler",
    "FramePool",
    "GroupedInsertClient",
    "LocalReplayClient",
    "MinSize",
    "PrioritizedSampler",
    "Queue",
    "RateLimiter",
    "ReplayClient",
    "SampleBatch",
    "SampleToInsertRatio",
    "Sampled",
    "Sampler",
    "SumTree",
    "Table",
    "UniformSampler",
]
