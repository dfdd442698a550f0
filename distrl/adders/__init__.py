"""Adders turn one environment stream into replay items, inserted in batches."""

from distrl.adders.base import Adder
from distrl.adders.nstep import NStepTransitionAdder
from distrl.adders.trajectory import TrajectoryAdder
from distrl.adders.vector_nstep import VectorNStepTransitionAdder

__all__ = ["Adder", "NStepTransitionAdder", "TrajectoryAdder", "VectorNStepTransitionAdder"]
