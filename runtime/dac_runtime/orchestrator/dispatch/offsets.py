"""Where intake may commit each partition: below the lowest offset still being decided.

Offsets commit in order per partition, so one slow accept holds back later ones; on a crash those are
delivered again and dispatch (idempotent by execution id and generation) skips what was taken.
"""

from __future__ import annotations

import collections

from aiokafka import TopicPartition


class OffsetTracker:
    """Commit position per partition = lowest offset still in flight, else one past the highest seen."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = collections.defaultdict(set)
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._pending[tp].add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> int | None:
        """The partition's new commit position, or ``None`` for an offset this tracker never saw
        (taken before :meth:`Intake.forget_positions`)."""
        pending = self._pending.get(tp)
        if pending is None or offset not in pending:
            return None
        pending.discard(offset)
        return self.position(tp)

    def position(self, tp: TopicPartition) -> int:
        pending = self._pending.get(tp)
        return min(pending) if pending else self._next.get(tp, 0)

    def partitions(self) -> list[TopicPartition]:
        return list(self._next)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Partitions this consumer no longer holds: what is decided of them later is not its to commit."""
        for tp in partitions:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
