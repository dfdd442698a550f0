"""The shell every distrl learner shares; the maths stays in each agent's ``learning.py``.

A learner is two things: one agent's update rule (DQN's double-Q step,
DDPG's critic-then-actor step, A2C's GAE step) and the plumbing around it
that is the same for all of them: counting updates (the weight version),
averaging metrics over ``log_every`` updates without a host sync per step,
serving versioned parameter snapshots to actors, and saving and restoring
networks, optimisers, the step count and the torch RNG. ``TorchLearner``
is that plumbing; an agent's learner subclasses it and writes ``_update``.
"""

from __future__ import annotations

import abc
import copy
import time
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from distrl.core import Learner
from distrl.types import SampleBatch, Versioned
from distrl.utils.counting import Counter
from distrl.utils.loggers import Logger, NullLogger
from distrl.variables.snapshots import ParameterSnapshots

#: What a learner saves and restores: modules and optimisers, by name.
StateObject = nn.Module | torch.optim.Optimizer


class NonFiniteLossError(FloatingPointError):
    """A learner's loss or metrics became NaN or infinite; its weights are no longer trustworthy."""


class TorchLearner(Learner):
    """A ``Learner`` whose subclass supplies only ``_update`` (one gradient update).

    Args:
      dataset: yields ``SampleBatch``es; ``_update`` takes what it needs.
      state: the modules and optimisers ``save``/``restore`` cover, by the
        names the saved dict uses (e.g. ``q_network``, ``optimizer``).
      published: the modules ``get_variables`` serves, by variable name
        (the agent builder's ``variable_names``).
      metric_names: the names of the 0-d tensors ``_update`` returns, in order.
      log_every: updates between metric logs (means over those updates).
      counter, logger: where ``learner_steps`` and the metric rows go.
      device: where the networks and the metric sums live.

    ``steps`` counts completed updates and is the version of the published
    parameters. ``save()`` returns a deep copy (training may go on while it
    is written) with the state objects' ``state_dict``s, ``steps`` and the
    torch RNG state (``torch_rng``).

    Metrics cost nothing per update: ``step`` keeps the 0-d tensors
    ``_update`` returns (at most ``log_every`` updates' worth) and folds them
    into the sums with one stack when weights leave the learner or
    a log is due, so the update loop adds no tensor op and no host sync of
    its own (profiling the distributed learner showed the per-update
    stack/sum/isfinite ops at 3-4% of its time).

    Non-finite losses: when the kept metrics are folded, the first update
    whose metrics were NaN or infinite is found and remembered;
    ``get_variables`` (what publishes weights to the actors) and ``save``
    (what writes checkpoints) raise ``NonFiniteLossError`` naming that
    update instead of handing out weights that a non-finite loss has already
    corrupted, and so does the next logging step.
    """

    def __init__(
        self,
        *,
        dataset: Iterator[SampleBatch],
        state: Mapping[str, StateObject],
        published: Mapping[str, nn.Module],
        metric_names: Sequence[str],
        log_every: int,
        counter: Counter | None,
        logger: Logger | None,
        device: torch.device,
    ) -> None:
        self._dataset = dataset
        self._state_objects = dict(state)
        self._metric_names = tuple(metric_names)
        self._log_every = int(log_every)
        self._counter = counter if counter is not None else Counter()
        self._logger = logger if logger is not None else NullLogger()
        self._device = device
        self._steps = 0
        self._updates_since_log = 0
        self._metric_sums = torch.zeros(len(self._metric_names), device=device)
        # Each update's metric tensors since the last fold, in update order (at most log_every).
        self._unfolded: list[tuple[torch.Tensor, ...]] = []
        # The first update (1-based) with non-finite metrics, or 0: kept on the device, read only when
        # weights leave the learner (get_variables, save, logs).
        self._first_nonfinite_step = torch.zeros((), dtype=torch.int64, device=device)
        self._last_log_time = time.perf_counter()
        self._snapshots = ParameterSnapshots(published, type(self).__name__)

    @property
    def steps(self) -> int:
        """Updates completed so far: the version ``get_variables`` reports."""
        return self._steps

    @abc.abstractmethod
    def _update(self) -> Mapping[str, torch.Tensor]:
        """Consumes data from ``self._dataset`` and makes one update.

        Every batch is drawn before the learner's state changes: the
        distributed learner may write a checkpoint while ``next(dataset)``
        waits for data (``PrefetchingIterator(on_wait=...)``).

        Returns a 0-d tensor per name of ``metric_names`` (same order). While
        it runs, ``self.steps`` is the number of updates before this one.
        """

    def _log_extras(self) -> dict[str, float]:
        """Metrics logged as they are (not averaged) next to the averaged ones."""
        return {}

    def step(self) -> Mapping[str, float]:
        """One update (``_update``); every ``log_every`` updates, the logged metrics.

        Returns ``{}`` except on the updates that log, which return the
        metrics written to the logger: the means of ``metric_names`` over
        the last ``log_every`` updates, ``_log_extras()``,
        ``charts/learner_steps`` and ``charts/updates_per_s``.
        """
        metrics = self._update()
        self._steps += 1
        self._updates_since_log += 1
        self._unfolded.append(tuple(metrics[name].detach() for name in self._metric_names))
        if self._steps % self._log_every == 0:
            self.check_finite()
            return self._log()
        return {}

    def _fold_metrics(self) -> None:
        """Adds the kept metrics to the sums and records the first update among them whose metrics
        were not finite (one stack, [updates, metrics], and a few ops on it; no host sync)."""
        if not self._unfolded:
            return
        values = torch.stack([value for row in self._unfolded for value in row]).view(len(self._unfolded), -1)
        first_step = self._steps - len(self._unfolded) + 1
        self._unfolded.clear()
        self._metric_sums += values.sum(dim=0)
        bad = ~torch.isfinite(values).all(dim=1)
        candidate = torch.where(bad.any(), first_step + bad.int().argmax(), 0)
        first = self._first_nonfinite_step
        first.copy_(torch.where(first == 0, candidate, first))

    def check_finite(self) -> None:
        """Raises ``NonFiniteLossError`` if any update so far had NaN or infinite metrics (one host sync)."""
        self._fold_metrics()
        first = int(self._first_nonfinite_step.item())
        if first:
            raise NonFiniteLossError(
                f"{type(self).__name__}: non-finite loss at learner step {first} (of {self._steps}); its weights are "
                "not published or saved from there on. Lower the learning rate or clip gradients (max_grad_norm)."
            )

    def _log(self) -> dict[str, float]:
        self._fold_metrics()
        now = time.perf_counter()
        n = self._updates_since_log
        means = (self._metric_sums / n).tolist()
        metrics = dict(zip(self._metric_names, means))
        metrics.update(self._log_extras())
        metrics["charts/learner_steps"] = float(self._steps)
        metrics["charts/updates_per_s"] = n / max(now - self._last_log_time, 1e-9)
        self._metric_sums.zero_()
        self._updates_since_log = 0
        self._last_log_time = now
        counts = self._counter.increment(learner_steps=n)
        self._logger.write(metrics, env_steps=int(counts.get("env_steps", 0)))
        return metrics

    def get_variables(self, names: Sequence[str]) -> Versioned[Mapping[str, Any]]:
        """``Versioned(steps, {name: numpy parameters})`` of the published modules,
        copied once per version; raises KeyError for a name not published and
        ``NonFiniteLossError`` once a loss was not finite."""
        self.check_finite()
        return self._snapshots.get(self._steps, names)

    def save(self) -> Mapping[str, Any]:
        """A deep copy of the full state, unaffected by later updates; raises
        ``NonFiniteLossError`` once a loss was not finite (the last good checkpoint stays)."""
        self.check_finite()
        state: dict[str, Any] = {name: obj.state_dict() for name, obj in self._state_objects.items()}
        state["steps"] = self._steps
        state["torch_rng"] = torch.get_rng_state()
        # The metric sums since the last log, so a resumed run logs the same means.
        state["metric_sums"] = self._metric_sums.detach().cpu()
        state["updates_since_log"] = self._updates_since_log
        return copy.deepcopy(state)

    def restore(self, state: Mapping[str, Any]) -> None:
        """Loads a ``save()`` dict; raises KeyError naming a missing entry."""
        for name, obj in self._state_objects.items():
            obj.load_state_dict(state[name])
            if isinstance(obj, torch.optim.Optimizer):
                # The implementation this process chose (fused, foreach) wins over the saved one: a
                # checkpoint from before fused Adam would otherwise resume on the slower loop.
                for group in obj.param_groups:
                    group.update({key: obj.defaults[key] for key in ("fused", "foreach") if key in obj.defaults})
        self._steps = int(state["steps"])
        torch.set_rng_state(state["torch_rng"])
        if "metric_sums" in state:
            self._metric_sums.copy_(state["metric_sums"])
            self._updates_since_log = int(state["updates_since_log"])
        else:
            self._metric_sums.zero_()
            self._updates_since_log = 0
        self._unfolded.clear()
        self._first_nonfinite_step.zero_()
        self._last_log_time = time.perf_counter()
        self._snapshots.invalidate()
