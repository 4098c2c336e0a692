"""How long the oldest waiting request has waited: the figure people page on, where consumer lag
(a count) says only how many.

The oldest waiting request of a partition is the record at its commit position, which intake has not
read (all workers busy) or has read and not finished (parked for its persona's turn, or waiting for an
accept). Its broker timestamp is when it was produced. A separate consumer outside the group reads
that one record per lagging partition, only while there is a backlog, so intake's own fetch position
is never moved.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

PEEK_WAIT_MS = 500


class Backlog:
    def __init__(self, bootstrap: str, client: dict[str, Any]) -> None:
        self._bootstrap, self._client = bootstrap, client
        self._peek: AIOKafkaConsumer | None = None
        #: Produce time (Unix seconds) of the oldest waiting request; None when nothing waits.
        self.oldest_at: float | None = None

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.oldest_at) if self.oldest_at is not None else 0.0

    async def measure(self, waiting: dict[TopicPartition, int]) -> None:
        """``waiting``: each partition with a backlog and its commit position."""
        if not waiting:
            self.oldest_at = None
            return
        if self._peek is None:
            self._peek = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False, **self._client
            )
            await self._peek.start()
        oldest: float | None = None
        for tp, position in waiting.items():
            self._peek.assign([tp])
            self._peek.seek(tp, position)
            batch = await self._peek.getmany(tp, timeout_ms=PEEK_WAIT_MS, max_records=1)
            for record in batch.get(tp, []):
                produced = record.timestamp / 1000
                oldest = produced if oldest is None else min(oldest, produced)
        self.oldest_at = oldest

    async def close(self) -> None:
        if self._peek is not None:
            with contextlib.suppress(KafkaError):
                await self._peek.stop()
            self._peek = None
