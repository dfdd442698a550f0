"""The two kinds of failure the command line tells apart.

``ConfigError`` (a ``ValueError``, defined with the config helpers) means
the experiment as asked cannot run: a bad option, an agent that cannot act
in the environment's spaces. It is raised before anything expensive starts,
and the command line prints one line and exits 2.

``TrainingError`` means a run that started failed: the environment raised
or returned an invalid value, a component crashed, a wait timed out. The
runtimes raise it from the original exception (its ``__cause__``, whose
traceback leads into the user's code) after writing what the run had so far
and a ``summary.json`` whose ``status`` is ``failed``; the command line
prints the traceback and exits 1.
"""

from __future__ import annotations

from distrl.utils.config import ConfigError


class TrainingError(RuntimeError):
    """A run that had started failed; ``__cause__`` is the original exception.

    ``env_steps`` is how far the run got and ``run_dir`` where its files
    (``metrics.csv``, ``summary.json`` with status ``failed``) are.
    """

    def __init__(self, message: str, env_steps: int, run_dir: str) -> None:
        super().__init__(message)
        self.env_steps = int(env_steps)
        self.run_dir = str(run_dir)


__all__ = ["ConfigError", "TrainingError"]
