"""The Ray runtime: N environment actors, one learner, a replay server and a weight store.

``run_distributed(config, DistributedConfig(...))`` runs the same
``ExperimentConfig`` as ``run_local``. One concept per module, in the order
a run meets them:

* ``config``: ``DistributedConfig``, how the run is spread over Ray actors;
* ``ray_setup``: starting or attaching to Ray, the learner's device;
* ``components``: creating the replay server (``distrl.replay.server``; its
  client is ``distrl.replay.ray_client``),
  the weight store (``distrl.variables.weight_store``), the learner and the
  env actors;
* ``env_actor``: ``EnvActorWorker``, environments + actor + replay client +
  weight source, acting in a background thread;
* ``learner``: ``LearnerWorker``, prefetched samples -> learner steps ->
  published weight versions, periodic checkpoints;
* ``monitoring``: the driver's view of the actors and the throughput figures;
* ``driver``: ``run_distributed``, the poll loop, evaluation and shutdown.

This package, ``distrl.replay.server``, ``distrl.replay.ray_client`` and
``distrl.variables.weight_store`` are the only runtime modules that import
ray (``distrl.bench`` imports it too, for its Ray benchmarks); ``run_local`` never does. Importing
the package, or its ``config``, does not import ray (the command line reads
``LEARNER_DEVICES`` in debug mode too): the names that need ray are loaded
from their modules on first use (PEP 562).
"""

from distrl.experiments.distributed.config import LEARNER_DEVICES, DistributedConfig
from distrl.utils.lazy import lazy_attributes

#: Public names that need ray, and the module of this package that defines each.
_RAY_NAMES = {
    "EnvActorWorker": "env_actor",
    "LearnerWorker": "learner",
    "PollState": "monitoring",
    "init_ray": "ray_setup",
    "run_distributed": "driver",
}

__getattr__ = lazy_attributes(__name__, _RAY_NAMES)

__all__ = ["LEARNER_DEVICES", "DistributedConfig", *_RAY_NAMES]
