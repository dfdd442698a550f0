"""A learner dataset that keeps several replay samples in flight.

The learner's ``step()`` calls ``next(dataset)`` once per update. Asking the
replay server only then would put a full round trip (and the server's
gather) on the learner's critical path every step; ``PrefetchingIterator``
keeps ``num_in_flight`` sample calls outstanding, so the next batch is
usually already local when the learner asks; it takes whichever call
answers first. It also moves each batch to
the learner's device (pinned host memory and a non-blocking copy on CUDA)
and measures how long the learner waited for data, which is how the
distributed runtime tells a data-starved learner from a compute-bound one.

This module does not import ray: a client with ``sample_async`` (the Ray
replay client) is prefetched through Ray object references, any other
client (e.g. the in-process one) through a small thread pool.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import torch
import tree

from distrl.replay.client import ReplayClient
from distrl.replay.table import DEFAULT_TIMEOUT_S
from distrl.types import SampleBatch


class PrefetchStopped(Exception):
    """Raised by ``next()`` when the iterator's stop event was set while it waited."""


class PrefetchingIterator(Iterator[SampleBatch]):
    """Yields ``SampleBatch``es whose ``data`` leaves are torch tensors on ``device``.

    ``keys``, ``probabilities`` and ``weights`` stay numpy (priorities are
    sent back keyed by ``keys``). On the CPU the tensors share memory with
    the received arrays, which may be read-only (Ray's object store): the
    learner must treat its inputs as read-only, as every learner here does.

    With ``batches_per_call`` = c > 1 each sample call asks for c * batch_size
    items at once and the iterator hands them out as c consecutive batches,
    so the per-call cost (a remote call and its reply, about a millisecond
    on a small busy machine, as much as a small network's whole update) is
    paid once per c learner steps. The rate limiter admits the c batches
    together, and prioritized importance weights are normalised over the c
    batches rather than over each.

    Args:
      client: Replay client of the table to sample.
      batch_size: Items per batch.
      num_in_flight: Sample calls kept outstanding, m >= 1.
      batches_per_call: Batches fetched by one sample call, c >= 1.
      device: Where batches go (CUDA: pinned memory, non-blocking copy).
      timeout: Seconds ``next()`` waits for one batch before TimeoutError.
      stop_event: When set, a waiting ``next()`` raises ``PrefetchStopped``
        within ``poll_s`` seconds (lets a runtime stop a learner that waits
        for data which will never come).
      poll_s: Seconds between checks of ``stop_event`` while waiting.
      on_wait: Called (in the consumer's thread) every ``poll_s`` while
        ``next()`` waits: the distributed learner writes a requested
        checkpoint there, as a learner waiting for data is between updates
        (``TorchLearner._update`` draws its data before changing anything).

    A sample call that fails with one of the client's ``retryable_errors``
    (``RayReplayClient``: the server died; Ray may be restarting it) is
    asked again, within the same ``timeout``; other errors are raised.
    """

    def __init__(
        self,
        client: ReplayClient,
        batch_size: int,
        num_in_flight: int = 2,
        device: torch.device | str = "cpu",
        timeout: float = DEFAULT_TIMEOUT_S + 30.0,
        stop_event: threading.Event | None = None,
        poll_s: float = 0.1,
        batches_per_call: int = 1,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        if num_in_flight < 1:
            raise ValueError(f"num_in_flight must be >= 1, got {num_in_flight!r}")
        if batches_per_call < 1:
            raise ValueError(f"batches_per_call must be >= 1, got {batches_per_call!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self._client = client
        self._batch_size = int(batch_size)
        self._num_in_flight = int(num_in_flight)
        self._device = torch.device(device)
        self._pin = self._device.type == "cuda"
        self._timeout = float(timeout)
        self._stop_event = stop_event
        self._poll_s = float(poll_s)
        self._batches_per_call = int(batches_per_call)
        self._on_wait = on_wait
        self._ready: collections.deque[SampleBatch] = collections.deque()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        if not hasattr(client, "sample_async"):
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._num_in_flight, thread_name_prefix="distrl-prefetch"
            )
        self._in_flight: collections.deque[concurrent.futures.Future] = collections.deque()
        self._wait_s = 0.0
        self._batches = 0
        self._first_request: float | None = None
        self._closed = False
        self._retried = 0
        # Errors after which a sample call is asked again (the client's, e.g. a replay server that
        # died and that Ray restarts); any other error is raised.
        self._retryable: tuple[type[BaseException], ...] = tuple(getattr(client, "retryable_errors", ()))

    def _request(self) -> None:
        if self._first_request is None:
            self._first_request = time.perf_counter()
        size = self._batch_size * self._batches_per_call
        if self._executor is not None:
            future = self._executor.submit(self._client.sample, size)
        else:
            future = self._client.sample_async(size).future()
        self._in_flight.append(future)

    def __iter__(self) -> "PrefetchingIterator":
        return self

    def __next__(self) -> SampleBatch:
        if not self._ready:
            while len(self._in_flight) < self._num_in_flight:
                self._request()
            start = time.perf_counter()
            try:
                sample = self._wait_first(start)
            finally:
                self._wait_s += time.perf_counter() - start
            self._request()
            self._split(sample._replace(data=self._to_device(sample.data)))
        self._batches += 1
        return self._ready.popleft()

    def _split(self, sample: SampleBatch) -> None:
        """Queues ``sample`` as ``batches_per_call`` consecutive batches."""
        if self._batches_per_call == 1:
            self._ready.append(sample)
            return
        size = self._batch_size
        for i in range(self._batches_per_call):
            part = slice(i * size, (i + 1) * size)
            self._ready.append(SampleBatch(
                sample.keys[part], tree.map_structure(lambda leaf: leaf[part], sample.data),
                sample.probabilities[part], sample.weights[part],
            ))

    def _wait_first(self, start: float) -> SampleBatch:
        """The result of the first in-flight call to finish (the oldest of those done).

        Not always the oldest call: concurrent calls waiting on the rate
        limiter are admitted in no fixed order, and when the data for only
        one call can come (a synchronous on-policy round) waiting for the
        oldest would wait for data that only this learner's next step
        releases.
        """
        deadline = start + self._timeout
        while True:
            if self._closed:
                raise PrefetchStopped("prefetching iterator closed while waiting for a batch")
            for future in list(self._in_flight):
                if future.done():
                    self._in_flight.remove(future)
                    error = future.exception()
                    if error is None:
                        return future.result()
                    if not isinstance(error, self._retryable):
                        raise error
                    self._retried += 1
                    time.sleep(self._poll_s)  # A server that stays dead fails every call at once.
                    self._request()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(
                    f"prefetching iterator: no batch of {self._batch_size} within {self._timeout:g} s "
                    f"({len(self._in_flight)} sample calls outstanding); replay is not being filled"
                )
            if self._stop_event is not None and self._stop_event.is_set():
                raise PrefetchStopped("prefetching iterator stopped while waiting for a batch")
            if self._on_wait is not None:
                self._on_wait()
            in_flight = list(self._in_flight)
            if not in_flight:  # Only after close() (it cleared them): nothing to wait on.
                time.sleep(min(self._poll_s, remaining))
                continue
            concurrent.futures.wait(
                in_flight, timeout=min(self._poll_s, remaining), return_when=concurrent.futures.FIRST_COMPLETED,
            )

    def _to_device(self, data: Any) -> Any:
        device, pin = self._device, self._pin

        def convert(leaf: Any) -> torch.Tensor:
            tensor = torch.from_numpy(np.asarray(leaf))
            if pin:
                return tensor.pin_memory().to(device, non_blocking=True)
            return tensor

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return tree.map_structure(convert, data)

    @property
    def wait_s(self) -> float:
        """Total seconds ``next()`` spent waiting for a batch."""
        return self._wait_s

    def stats(self) -> dict[str, float]:
        """``batches`` yielded, ``wait_s`` (seconds the consumer waited for data),
        ``elapsed_s`` since the first request, ``wait_fraction`` = wait_s / elapsed_s and
        ``retried_calls`` (sample calls asked again after a ``retryable_errors`` error)."""
        elapsed = 0.0 if self._first_request is None else time.perf_counter() - self._first_request
        return {
            "batches": float(self._batches),
            "wait_s": self._wait_s,
            "elapsed_s": elapsed,
            "wait_fraction": self._wait_s / elapsed if elapsed > 0 else 0.0,
            "retried_calls": float(self._retried),
        }

    def close(self) -> None:
        """Drops outstanding requests (their results are discarded) and stops the threads; a
        ``next()`` waiting in another thread raises ``PrefetchStopped`` within ``poll_s``.

        Ray sample calls already submitted still run on the server; their
        samples count for the rate limiter like any other.
        """
        self._closed = True
        self._in_flight.clear()
        self._ready.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
