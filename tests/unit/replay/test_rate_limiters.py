"""Unit tests for distrl.replay.rate_limiters, alone and driving a Table from threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from distrl.replay import (
    MinSize,
    Queue,
    RateLimiter,
    SampleToInsertRatio,
    Table,
    UniformSampler,
)
from distrl.replay.rate_limiters import SampleWaitCancelled
from distrl.types import Transition


def transitions(n: int) -> Transition:
    return Transition(
        observation=np.zeros((n, 4), np.float32),
        action=np.zeros(n, np.int64),
        reward=np.zeros(n, np.float32),
        discount=np.ones(n, np.float32),
        next_observation=np.zeros((n, 4), np.float32),
        extras=(),
    )


def test_min_size_blocks_sampling_until_enough_items_are_inserted():
    table = Table("t", 100, UniformSampler(seed=0), MinSize(10))
    table.insert(transitions(9))
    assert not table.can_sample(1) and table.can_insert(1000)
    sampled = []
    sampler = threading.Thread(target=lambda: sampled.append(table.sample(4, timeout=10)))
    sampler.start()
    time.sleep(0.05)
    assert not sampled  # Still waiting: 9 < 10.
    table.insert(transitions(1))
    sampler.join(timeout=10)
    assert len(sampled) == 1 and sampled[0].keys.shape == (4,)
    assert table.info()["sample_wait_s"] > 0.04


def test_cancel_sample_waits_ends_waiting_samples_only():
    """A queue's waiting sample calls end with SampleWaitCancelled and take
    nothing; a sample begun afterwards waits as usual and gets the items."""
    table = Table.queue("q", 10)
    outcomes: list = []

    def sample() -> None:
        try:
            outcomes.append(table.sample(2, timeout=10))
        except SampleWaitCancelled as error:
            outcomes.append(error)

    waiting = [threading.Thread(target=sample) for _ in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(0.2)  # Both are waiting: the queue is empty.
    assert not outcomes
    table.cancel_sample_waits()
    for thread in waiting:
        thread.join(timeout=10)
    assert len(outcomes) == 2 and all(isinstance(o, SampleWaitCancelled) for o in outcomes)
    assert "cancelled" in str(outcomes[0]) and "'q'" in str(outcomes[0])
    later = threading.Thread(target=sample)
    later.start()
    time.sleep(0.05)
    table.insert(transitions(2))
    later.join(timeout=10)
    assert outcomes[2].keys.shape == (2,) and table.size == 0


def test_timeouts_raise_with_what_was_waited_for_and_the_state():
    table = Table("learner_table", 100, UniformSampler(seed=0), MinSize(5))
    table.insert(transitions(2))
    start = time.monotonic()
    with pytest.raises(TimeoutError) as error:
        table.sample(3, timeout=0.1)
    assert 0.1 <= time.monotonic() - start < 2.0
    message = str(error.value)
    for part in ("learner_table", "timed out after 0.1 s", "3 item(s) may be sampled", "MinSize", "size=2"):
        assert part in message
    with pytest.raises(TimeoutError, match="may not be sampled now"):
        table.sample(3, block=False)
    limiter = SampleToInsertRatio(1.0, 1, 2.0)
    limiter.insert(3)  # d = 3 = max_diff: the next insert must wait for samples.
    with pytest.raises(TimeoutError, match="caller: timed out.*inserted.*SampleToInsertRatio"):
        limiter.await_can_insert(1, timeout=0.05)
    assert limiter.insert_wait_s >= 0.05


@pytest.mark.parametrize(
    "samples_per_insert, error_buffer, required",
    [(4.0, 3.9, "4"), (0.5, 0.9, "1"), (1.0, 0.0, "1"), (8.0, -1.0, "8")],
)
def test_sample_to_insert_ratio_rejects_windows_that_could_deadlock(samples_per_insert, error_buffer, required):
    with pytest.raises(ValueError, match=rf"error_buffer \({error_buffer}\) must be >= max\(1, samples_per_insert\) = {required}"):
        SampleToInsertRatio(samples_per_insert, 10, error_buffer)


def test_constructors_reject_invalid_values():
    with pytest.raises(ValueError, match=r"min_size_to_sample \(0\)"):
        MinSize(0)
    with pytest.raises(ValueError, match=r"samples_per_insert \(0\)"):
        SampleToInsertRatio(0, 10, 5.0)
    with pytest.raises(ValueError, match=r"min_size_to_sample \(0\)"):
        SampleToInsertRatio(1.0, 0, 5.0)
    with pytest.raises(ValueError, match=r"max_size \(0\)"):
        Queue(0)
    SampleToInsertRatio(4.0, 10, 4.0)  # The narrowest allowed window.


def test_window_matches_reverb_and_batches_are_admitted_on_their_first_item():
    limiter = SampleToInsertRatio(samples_per_insert=2.0, min_size_to_sample=10, error_buffer=5.0)
    assert (limiter.min_diff, limiter.max_diff) == (15.0, 25.0)
    limiter.insert(9)
    assert not limiter.can_sample(1)  # Below min size.
    assert limiter.can_insert(100)  # size + 1 <= 10: the whole batch goes in.
    limiter.insert(100)
    assert limiter.diff == 218 and not limiter.can_insert(1)
    assert limiter.can_sample(500)  # d - 1 >= 15: admitted, then counts 500 samples.
    limiter.sample(500)
    assert limiter.diff == -282 and not limiter.can_sample(1) and limiter.can_insert(1)


def test_every_reachable_state_admits_an_insert_or_a_sample():
    """Deadlock freedom of first-item admission, by random walks over valid windows."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        spi = float(rng.choice([0.25, 0.5, 1.0, 3.0, 8.0, 32.0]))
        min_size = int(rng.integers(1, 50))
        error_buffer = max(1.0, spi) * float(rng.uniform(1.0, 3.0))
        limiter = SampleToInsertRatio(spi, min_size, error_buffer)
        insert_batch, sample_batch = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        for _ in range(300):
            options = []
            if limiter.can_insert(insert_batch):
                options.append("insert")
            if limiter.can_sample(sample_batch):
                options.append("sample")
            assert options, limiter.describe()
            if rng.choice(options) == "insert":
                limiter.insert(insert_batch)
            else:
                limiter.sample(sample_batch)


def test_sample_to_insert_ratio_holds_between_concurrent_inserter_and_sampler():
    spi, insert_batch, sample_batch = 2.0, 8, 16
    limiter = SampleToInsertRatio(spi, min_size_to_sample=50, error_buffer=24.0)
    table = Table("ratio", 10_000, UniformSampler(seed=0), limiter)
    upper = limiter.max_diff + (insert_batch - 1) * spi
    lower = limiter.min_diff - (sample_batch - 1)
    observed: list[tuple[int, int, float]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def observe():
        with limiter.lock:
            observed.append((limiter.inserts, limiter.samples, limiter.diff))

    def insert_loop():
        try:
            for _ in range(300):
                table.insert(transitions(insert_batch), timeout=10)
                observe()
        except BaseException as error:  # Surfaced by the main thread.
            errors.append(error)
        finally:
            done.set()

    def sample_loop():
        try:
            while not done.is_set():
                try:
                    table.sample(sample_batch, timeout=0.05)
                except TimeoutError:
                    continue
                observe()
            while table.can_sample(sample_batch):
                table.sample(sample_batch, block=False)
                observe()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=insert_loop), threading.Thread(target=sample_loop)]
    for thread in threads:
        thread.start()
    while not done.is_set():
        observe()  # A third observer, sampling states while both run.
        time.sleep(0.0005)
    for thread in threads:
        thread.join(timeout=20)
    assert not errors, errors
    assert limiter.inserts == 300 * insert_batch
    assert limiter.samples >= limiter.inserts * spi - limiter.min_diff - sample_batch
    for inserts, samples, diff in observed:
        assert diff <= upper, (inserts, samples, diff)
        if samples:
            assert diff >= lower, (inserts, samples, diff)
    # The window is narrow, so each side had to wait for the other to release it.
    info = table.info()
    assert info["insert_wait_s"] > 0 and info["sample_wait_s"] > 0
    assert info["samples_per_insert"] == pytest.approx(spi, rel=0.05)


def test_queue_limiter_admits_whole_batches_only():
    queue = Queue(5)
    assert queue.strict_inserts and not RateLimiter.strict_inserts
    assert queue.can_insert(5) and not queue.can_insert(6) and not queue.can_sample(1)
    queue.insert(3)
    assert queue.can_sample(3) and not queue.can_sample(4)
    assert queue.can_insert(2) and not queue.can_insert(3)
    queue.sample(2)
    queue.delete(2)
    assert queue.size == 1 and queue.can_insert(4)
    with pytest.raises(ValueError, match="a batch of 6 items can never fit a Queue of max_size 5"):
        queue.await_can_insert(6, timeout=1.0)


def test_limiter_state_round_trip_checks_the_configuration():
    limiter = SampleToInsertRatio(2.0, 10, 5.0)
    limiter.insert(20)
    limiter.sample(7)
    limiter.delete(3)
    restored = SampleToInsertRatio(2.0, 10, 5.0)
    restored.set_state(limiter.get_state())
    assert (restored.inserts, restored.samples, restored.deletes) == (20, 7, 3)
    with pytest.raises(ValueError, match="saved with samples_per_insert=2"):
        SampleToInsertRatio(3.0, 10, 5.0).set_state(limiter.get_state())


def test_with_tolerance_window_fits_one_sample_and_one_insert_batch():
    from distrl.replay.rate_limiters import SampleToInsertRatio

    wide = SampleToInsertRatio.with_tolerance(32.0, 1_000, 0.1, sample_batch_size=64, insert_batch_size=16)
    assert wide.error_buffer == 0.1 * 32.0 * 1_000
    narrow = SampleToInsertRatio.with_tolerance(32.0, 100, 0.0, sample_batch_size=64, insert_batch_size=16)
    assert narrow.error_buffer == 2.0 * 16 * 32.0
    assert narrow.max_diff - narrow.min_diff >= 2 * max(64, 16 * 32.0)
