"""Which offset a host's consumer group may commit: per partition, the oldest record whose items the
application has not had yet, or past the last record seen when none is held. So a host that dies
re-reads from there and loses nothing it had not handed over."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition


class Offsets:
    """Held records by partition, keyed by (execution id, seq or "end")."""

    def __init__(self) -> None:
        self._held: dict[TopicPartition, dict[int, Any]] = {}
        self._where: dict[Any, tuple[TopicPartition, int]] = {}
        self._keys: dict[str, set[Any]] = {}  # execution id -> its held keys
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def seen(self, tp: TopicPartition, offset: int) -> None:
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def hold(self, tp: TopicPartition, offset: int, key: Any) -> None:
        self._held.setdefault(tp, {})[offset] = key
        self._where[key] = (tp, offset)
        self._keys.setdefault(key[0], set()).add(key)

    def done(self, key: Any) -> None:
        where = self._where.pop(key, None)
        if where is not None:
            self._held.get(where[0], {}).pop(where[1], None)
            keys = self._keys.get(key[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys[key[0]]

    def forget(self, execution_id: str) -> None:
        for key in list(self._keys.get(execution_id, ())):
            self.done(key)

    def revoked(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            for key in list(self._held.get(tp, {}).values()):
                self.done(key)
            self._held.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)

    def to_commit(self) -> dict[TopicPartition, int]:
        """What moved since the last commit."""
        moved = {}
        for tp, position in self._next.items():
            held = self._held.get(tp)
            offset = min(held) if held else position
            if self._committed.get(tp) != offset:
                moved[tp] = self._committed[tp] = offset
        return moved
