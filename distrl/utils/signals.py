"""Graceful stops on SIGINT and SIGTERM: the run finishes what it is doing, checkpoints, and ends.

A cluster scheduler preempts a job with SIGTERM, a person with Ctrl-C
(SIGINT). ``graceful_stop()`` installs handlers (in the main thread) that
record the first signal instead of raising at an arbitrary line; the
runtimes ask ``stop_requested()`` at safe points (between episodes, between
polls), write a final checkpoint and a summary marked ``interrupted``, and
raise ``RunInterrupted``; the command line exits 128 + the signal number
(130 for SIGINT, 143 for SIGTERM). A second signal raises
``KeyboardInterrupt`` at once, for a run that does not reach a safe point.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

_requested: list[int] = []
_active_handler: list = []  # The handler of the graceful_stop block in effect, if any.


class RunInterrupted(KeyboardInterrupt):
    """A run stopped early on a signal, after its final checkpoint and summary; ``signal_number`` says which."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = int(signal_number)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number."""
        return 128 + self.signal_number


def stop_requested() -> int | None:
    """The signal number of the first SIGINT/SIGTERM since ``graceful_stop`` began, else None."""
    return _requested[0] if _requested else None


def request_stop(signal_number: int = signal.SIGINT) -> None:
    """Records a stop request as if ``signal_number`` had arrived (for callers without signals)."""
    if not _requested:
        _requested.append(int(signal_number))


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM is recorded (``stop_requested``) and the second
    raises ``KeyboardInterrupt``; the previous handlers come back afterwards. Outside the main
    thread (where Python cannot install handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(number: int, frame: object) -> None:
        if _requested:
            raise KeyboardInterrupt(f"second {signal.Signals(number).name}: stopping at once")
        _requested.append(int(number))

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    _requested.clear()
    _active_handler[:] = [handle]
    try:
        yield
    finally:
        _active_handler.clear()
        for number, handler in previous.items():
            signal.signal(number, handler)
        _requested.clear()


def reclaim_signals() -> None:
    """Installs the ``graceful_stop`` handlers again, when a block is active (main thread only).

    ``ray.init`` installs its own SIGTERM handler in the driver (it exits
    with status 15 at once); the distributed runtime calls this after it.
    """
    if _active_handler and threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, _active_handler[0])
