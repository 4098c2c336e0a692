"""One execution submitted through Kafka, as the host application holds it: its items put back in
``seq`` order (output and events travel on two topics at their own pace), at most ``max_buffered`` of
them waiting for a reader, and its outcome once the terminal lifecycle record and every item before its
``lastSeq`` are in. :class:`~dac_provision.host.kafka.KafkaExecutor` feeds it; the application reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from dac_runtime.records import LifecycleRecord

from ..client import TERMINAL, ClientError, Output, Result


class KafkaExecution:
    """An execution submitted through Kafka. ``async for item in execution`` streams it (once)."""

    def __init__(self, execution_id: str, persona_id: str, delivered: int, max_buffered: int) -> None:
        self.id, self.persona_id = execution_id, persona_id
        self._next = delivered + 1
        self._pending: dict[int, Output] = {}  # arrived ahead of an earlier seq
        self._items: asyncio.Queue[Output | None] = asyncio.Queue()
        self._max = max_buffered
        self._dropped = 0
        self._statuses: set[str] = set()
        self._terminal: LifecycleRecord | None = None
        self._result: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.cancel_with: Callable[[str], Any] | None = None
        self.iterated = False
        self._consumed: Callable[[KafkaExecution, int], None] = lambda execution, seq: None

    def __repr__(self) -> str:
        return f"KafkaExecution({self.id!r})"

    @property
    def delivered_seq(self) -> int:
        return self._next - 1

    def _put(self, item: Output | None) -> None:
        if item is not None and self._items.qsize() >= self._max:
            self._dropped += 1
            return
        self._items.put_nowait(item)

    def _arrived(self, seq: int, item: Output) -> list[Output]:
        """Take an output or event item; returns the ones now deliverable, in seq order."""
        if seq < self._next or seq in self._pending:
            return []  # seen before (at-least-once delivery, or a resumed host)
        if len(self._pending) >= self._max:
            self._dropped += 1
            return []
        self._pending[seq] = item
        ready = []
        while self._next in self._pending:
            ready.append(self._pending.pop(self._next))
            self._next += 1
        for out in ready:
            self._put(out)
        return ready

    def _status(self, record: LifecycleRecord) -> None:
        if record.status in TERMINAL:
            self._terminal = record
        elif record.status not in self._statuses:
            self._statuses.add(record.status)
            self._put(Output("lifecycle", status=record.status))

    def _complete(self) -> bool:
        record = self._terminal
        return record is not None and (record.last_seq is None or self.delivered_seq >= record.last_seq)

    def _finish(self, result: Result | None) -> None:
        if result is not None and self._terminal is not None:
            self._put(Output("lifecycle", status=self._terminal.status, exit_code=self._terminal.exit_code))
        self._items.put_nowait(None)
        if not self._result.done():
            if result is None:
                self._result.set_exception(ClientError(f"{self.id}: its outcome was reported before a restart"))
            else:
                self._result.set_result(result)

    async def __aiter__(self) -> AsyncIterator[Output]:
        self.iterated = True
        while (item := await self._items.get()) is not None:
            yield item
            if item.seq is not None:  # the application came back for more: it has this one
                self._consumed(self, item.seq)
        if self._dropped:
            raise ClientError(f"{self.id}: {self._dropped} items were dropped, nothing read them (max_buffered)")

    async def wait(self) -> Result:
        return await asyncio.shield(self._result)

    async def cancel(self) -> None:
        if self.cancel_with is None:
            raise ClientError("cancel goes through the orchestrator's API: give KafkaExecutor an api= Client")
        await self.cancel_with(self.id)
