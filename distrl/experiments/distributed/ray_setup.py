"""Starting or attaching to Ray, choosing the learner's device, and telling a restarted actor.

Like the rest of the ``distrl.experiments.distributed`` package (and
``distrl.replay.server``, ``distrl.replay.ray_client``,
``distrl.variables.weight_store``), this module imports ray; ``run_local``
never does.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import ray

import distrl
from distrl.experiments.distributed.config import DistributedConfig


def init_ray(dist: DistributedConfig) -> bool:
    """Starts or attaches to Ray as ``dist`` says; returns True when this call started it.

    A Ray already initialised in this process is reused as it is. "local"
    mode always starts a private instance (``address="local"``), never
    attaching to a cluster that happens to run on the machine. Workers must
    import distrl: the directory holding the package is put on their
    PYTHONPATH (a checkout that is not installed works too). Raises
    ConnectionError (Ray's) when no cluster answers at ``dist.address``.
    """
    if ray.is_initialized():
        return False
    package_root = str(Path(distrl.__file__).resolve().parent.parent)
    python_path = os.environ.get("PYTHONPATH", "")
    if package_root not in python_path.split(os.pathsep):
        os.environ["PYTHONPATH"] = package_root + (os.pathsep + python_path if python_path else "")
    if dist.address is None:
        ray.init(address="local", num_cpus=dist.num_cpus or os.cpu_count() or 1, include_dashboard=False)
    else:
        ray.init(address=dist.address)
    return True


def resolve_learner_device(requested: str, cluster_gpus: float) -> str:
    """``cuda`` or ``cpu`` for a requested ``auto`` | ``cuda`` | ``cpu`` on a cluster with
    ``cluster_gpus`` GPUs; ``auto`` picks CUDA when there is a whole GPU. Raises
    ValueError naming ``DistributedConfig.learner_device`` for ``cuda`` without a GPU."""
    if requested == "auto":
        return "cuda" if cluster_gpus >= 1 else "cpu"
    if requested == "cuda" and cluster_gpus < 1:
        raise ValueError(
            "DistributedConfig.learner_device must be auto or cpu on a Ray cluster without GPUs, got 'cuda'"
        )
    return requested


def was_restarted() -> bool:
    """True in an actor process that Ray restarted (False outside an actor)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # The property is deprecated but has no replacement yet.
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except AssertionError:  # Not an actor process (e.g. a driver running a worker in-process).
        return False
