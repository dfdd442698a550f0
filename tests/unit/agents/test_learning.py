"""TorchLearner's shell: metric means over log_every updates and the non-finite guard."""

from __future__ import annotations

import math
from typing import Iterator, Mapping

import pytest
import torch
from torch import nn

from distrl.agents.learning import NonFiniteLossError, TorchLearner
from distrl.utils.loggers import BufferLogger


class ScriptedLearner(TorchLearner):
    """Each update returns the next scripted loss (and twice it) and moves no weight."""

    def __init__(self, losses: Iterator[float], log_every: int, logger: BufferLogger | None = None) -> None:
        self.network = nn.Linear(2, 1)
        self._losses = losses
        super().__init__(
            dataset=iter(()), state={"network": self.network}, published={"network": self.network},
            metric_names=("losses/loss", "losses/double"), log_every=log_every, counter=None, logger=logger,
            device=torch.device("cpu"),
        )

    def _update(self) -> Mapping[str, torch.Tensor]:
        loss = torch.tensor(next(self._losses))
        return {"losses/loss": loss, "losses/double": 2 * loss}


def test_logged_metrics_are_the_means_over_log_every_updates():
    logger = BufferLogger()
    learner = ScriptedLearner(iter([1.0, 2.0, 3.0, 4.0, 10.0, 20.0]), log_every=3, logger=logger)
    logged = [learner.step() for _ in range(6)]
    assert logged[0] == {} and logged[1] == {}
    assert logged[2]["losses/loss"] == pytest.approx(2.0) and logged[2]["losses/double"] == pytest.approx(4.0)
    assert logged[5]["losses/loss"] == pytest.approx(34.0 / 3)


def test_publishing_between_logs_keeps_the_means():
    learner = ScriptedLearner(iter([1.0, 2.0, 3.0, 6.0]), log_every=4)
    learner.step(), learner.step()
    assert learner.get_variables(["network"]).version == 2  # Folds the first two updates' metrics.
    learner.step()
    assert learner.step()["losses/loss"] == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_the_first_non_finite_update_is_named_when_weights_leave(bad):
    learner = ScriptedLearner(iter([1.0] * 6 + [bad, 1.0, bad] + [1.0] * 5), log_every=100)
    for _ in range(5):
        learner.step()
    learner.get_variables(["network"])  # Finite so far.
    for _ in range(9):
        learner.step()
    with pytest.raises(NonFiniteLossError, match=r"learner step 7 \(of 14\)"):
        learner.get_variables(["network"])
    with pytest.raises(NonFiniteLossError, match=r"learner step 7 \(of 14\)"):
        learner.save()


def test_a_non_finite_update_stops_the_next_log():
    learner = ScriptedLearner(iter([1.0, math.nan, 1.0]), log_every=3)
    learner.step(), learner.step()
    with pytest.raises(NonFiniteLossError, match="learner step 2 "):
        learner.step()


def test_restore_drops_metrics_not_yet_folded():
    learner = ScriptedLearner(iter([1.0, 1.0, math.nan, 5.0, 7.0]), log_every=2)
    learner.step()
    saved = learner.save()
    learner.step(), learner.step()  # A non-finite update after the checkpoint...
    learner.restore(saved)  # ...is gone with the state it corrupted.
    assert learner.step()["losses/loss"] == pytest.approx(3.0)


def test_restore_keeps_the_optimizer_implementation_of_this_process():
    learner = ScriptedLearner(iter([1.0] * 4), log_every=10)
    fused = torch.optim.Adam(learner.network.parameters(), lr=1e-3, fused=True)
    learner._state_objects["optimizer"] = fused
    plain = torch.optim.Adam(learner.network.parameters(), lr=1e-3)  # A checkpoint from before fused Adam.
    learner.network(torch.ones(1, 2)).sum().backward()
    plain.step()
    saved = learner.save()
    saved["optimizer"] = plain.state_dict()
    learner.restore(saved)
    assert [group["fused"] for group in fused.param_groups] == [True]
    fused.step()  # The loaded state works with the fused update.
