"""The driver's view of the replay server across restarts (ReplayTracker)."""

from __future__ import annotations

from distrl.experiments.distributed.monitoring import ReplayTracker


def report(incarnation: str, restored_inserts: int = 0, restored_from: str | None = None) -> dict:
    return {"incarnation": incarnation, "restored_inserts": restored_inserts, "restored_from": restored_from}


def test_a_new_incarnation_is_a_restart_and_the_inserts_it_lacks_are_the_lost_window():
    tracker = ReplayTracker()
    tracker.update({"inserts": 100}, report("a"))
    tracker.update({"inserts": 900}, report("a"))
    assert (tracker.restarts, tracker.lost_inserts) == (0, 0)
    # Restarted from a checkpoint taken at 600 inserts: the 300 after it are lost.
    tracker.update({"inserts": 650}, report("b", restored_inserts=600, restored_from="/run/checkpoints/ckpt-1"))
    assert (tracker.restarts, tracker.lost_inserts) == (1, 300)
    assert tracker.restored_from == ["/run/checkpoints/ckpt-1"]
    # Restarted again with no checkpoint: it starts empty and everything seen is lost.
    tracker.update({"inserts": 20}, report("c"))
    assert (tracker.restarts, tracker.lost_inserts) == (2, 300 + 650)
    assert tracker.restored_from == ["/run/checkpoints/ckpt-1", None]
