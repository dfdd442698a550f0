"""Starting or attaching to Ray, choosing the learner's device, and telling a restarted actor.

Like the rest of the ``distrl.experiments.distributed`` package (and
``distrl.replay.server``, ``distrl.replay.ray_client``,
``distrl.variables.weight_store``), this module imports ray; ``run_local``
never does.
"""

from __future__ import annotations

import os
from pathlib import Path

import ray

import distrl
from distrl.experiments.distributed.config import DistributedConfig
from distrl.replay.server import was_restarted

__all__ = ["init_ray", "resolve_learner_device", "was_restarted"]


def init_ray(dist: DistributedConfig) -> bool:
    """Starts or attaches to Ray as ``dist`` says; returns True when this call started it.

    A Ray already initialised in this process is reused as it is. "local"
    mode always starts a private instance (``address="local"``), never
    attaching to a cluster that happens to run on the machine, without the
    dashboard and without Ray's metrics endpoint. Workers must
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
        # No dashboard, and no metrics collection: the Prometheus exporter of Ray's dashboard agent
        # listens on every interface and answers without the cluster's token (Ray binds it to
        # loopback only when the node's address is loopback, which ray.init does not allow). What
        # stays open are Ray's gRPC ports and the runtime-env agent, which ask for the token.
        ray.init(address="local", num_cpus=dist.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 _system_config={"enable_metrics_collection": False})
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


