"""A thread-safe counter of steps, episodes and time shared by workers."""

from __future__ import annotations

import threading
from typing import Mapping


class Counter:
    """Accumulates named integer/float counts (env_steps, episodes, learner_steps...).

    Cheap enough to call once per episode or per learner step; environment
    loops batch their env-step increments per episode.
    """

    def __init__(self) -> None:
        self._counts: dict[str, float] = {}
        self._lock = threading.Lock()

    def increment(self, **deltas: float) -> dict[str, float]:
        """Adds ``deltas`` to the named counts and returns a copy of all counts."""
        with self._lock:
            for key, delta in deltas.items():
                self._counts[key] = self._counts.get(key, 0) + delta
            return dict(self._counts)

    def get(self, key: str, default: float = 0) -> float:
        with self._lock:
            return self._counts.get(key, default)

    def get_counts(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    def save(self) -> Mapping[str, float]:
        return self.get_counts()

    def restore(self, state: Mapping[str, float]) -> None:
        with self._lock:
            self._counts = dict(state)
