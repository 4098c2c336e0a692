"""Commit positions: the lowest offset still in flight, never past one that is; nothing for offsets
taken before positions were forgotten (a broker outage may have replaced the log)."""

from __future__ import annotations

from aiokafka import TopicPartition

from dac_runtime.orchestrator.dispatch.offsets import OffsetTracker

TP = TopicPartition("t", 0)


def test_position_waits_for_the_lowest_offset_in_flight():
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.add(TP, offset)
    assert tracker.done(TP, 6) == 5  # 5 still in flight: do not commit past it
    assert tracker.done(TP, 5) == 7
    assert tracker.done(TP, 7) == 8


def test_an_offset_the_tracker_never_saw_moves_nothing():
    tracker = OffsetTracker()
    tracker.add(TP, 3)
    assert tracker.done(TopicPartition("t", 1), 40) is None
    assert tracker.done(TP, 99) is None
    assert tracker.position(TP) == 3
