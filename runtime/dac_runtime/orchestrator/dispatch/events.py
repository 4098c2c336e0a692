"""Where everything an execution says goes: the store, Kafka, and live SSE subscribers.

Output rows are buffered and written to SQLite in batches (a flush every 100 ms, and before any
terminal status) so the per-chunk hot path is a Kafka enqueue and an in-memory fan-out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ...protocol import Event, Stderr, Stdout, Usage
from ...records import DeadLetter, EventRecord, ExecRequest, LifecycleRecord, OutputRecord, Status

if TYPE_CHECKING:
    from ..ops.dead_letters import DeadLetters
    from ..ops.metrics import Metrics
    from ..store import Store
    from .bus import Bus

log = logging.getLogger("dac.orchestrator.events")
SubscriberQueue = asyncio.Queue[dict[str, Any] | None]


class Events:
    def __init__(self, store: Store, bus: Bus, metrics: Metrics, dead_letters: DeadLetters) -> None:
        self.store, self.bus, self.metrics, self.dead_letters = store, bus, metrics, dead_letters
        #: hooks the composition root sets once their owners exist: an event an agent emitted (persona
        #: chaining reads ``persona_action``), and an execution's end by status (the alarms count them)
        self.on_event: Callable[[ExecRequest, str, Any], None] = lambda request, event_type, payload: None
        self.on_finished: Callable[[str], None] = lambda status: None
        #: whether this orchestrator may still speak (its lease holds): once it lost it, nothing more
        #: it has to say reaches the store, Kafka or a stream
        self.acting: Callable[[], bool] = lambda: True
        self._subscribers: dict[str, set[SubscriberQueue]] = collections.defaultdict(set)
        self._pending_rows: list[tuple[str, int, str, str]] = []

    # --- live subscribers -----------------------------------------------------------------------

    def subscribe(self, execution_id: str) -> SubscriberQueue:
        queue: SubscriberQueue = asyncio.Queue()
        self._subscribers[execution_id].add(queue)
        return queue

    def unsubscribe(self, execution_id: str, queue: SubscriberQueue) -> None:
        subscribers = self._subscribers.get(execution_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[execution_id]

    def _publish(self, execution_id: str, item: dict[str, Any] | None) -> None:
        for queue in self._subscribers.get(execution_id, ()):
            queue.put_nowait(item)

    # --- sinks ----------------------------------------------------------------------------------

    async def output(self, request: ExecRequest, frame: Stdout | Stderr | Event) -> None:
        if not self.acting():
            return
        bus = self.bus
        if isinstance(frame, Event):
            record = EventRecord(
                execution_id=request.execution_id,
                persona_id=request.persona_id,
                event_type=frame.event_type,
                payload=frame.payload,
                seq=frame.seq,
                timestamp=time.time(),
            )
            await bus.event(record)
            self.on_event(request, frame.event_type, frame.payload)
            item = {"kind": "event", "seq": frame.seq, "eventType": frame.event_type, "payload": frame.payload}
        else:
            stream = "stdout" if isinstance(frame, Stdout) else "stderr"
            output = OutputRecord(
                execution_id=request.execution_id,
                seq=frame.seq,
                stream=stream,
                chunk=frame.chunk,
                timestamp=frame.timestamp,
            )
            await bus.output(output)
            self.metrics.output_bytes.inc(len(frame.chunk))
            item = {"kind": stream, "seq": frame.seq, "chunk": frame.chunk}
        self._pending_rows.append((request.execution_id, frame.seq, item["kind"], msgspec.json.encode(item).decode()))
        self._publish(request.execution_id, item)

    async def lifecycle(self, request: ExecRequest, status: Status, **extra: Any) -> None:
        if not self.acting():
            return
        record = LifecycleRecord(
            execution_id=request.execution_id,
            persona_id=request.persona_id,
            status=status,
            timestamp=time.time(),
            attempt=request.attempt,
            parent_id=request.parent_id,
            depth=request.depth,
            **extra,
        )
        await self.bus.lifecycle(record)
        item = msgspec.to_builtins(record)
        item["kind"] = "lifecycle"
        self._publish(request.execution_id, item)

    async def finish(
        self,
        request: ExecRequest,
        status: Status,
        *,
        exit_code: int | None = None,
        duration_ms: int | None = None,
        usage: Usage | None = None,
        reason: str | None = None,
        dead_letter: bool = False,
        last_seq: int | None = None,
    ) -> bool:
        """Record and tell the end of an execution; False when it is not this orchestrator's to tell.
        ``last_seq``: the highest output seq relayed, when the caller knows it (else the store says)."""
        if not self.acting():
            return False
        self.flush()
        recorded = await self.store.finish_execution(
            request.execution_id,
            status=status,
            exit_code=exit_code,
            duration_ms=duration_ms,
            usage=msgspec.json.encode(usage).decode() if usage else None,
            reason=reason,
        )
        if not recorded:  # another orchestrator owns it now (or this one's lease ran out): not ours to say
            log.warning("%s: not recording %s: it is no longer this orchestrator's", request.execution_id, status)
            self._publish(request.execution_id, None)
            return False
        self.metrics.finished.labels(status).inc()
        self.on_finished(status)
        if last_seq is None:
            last_seq = await self.store.last_seq(request.execution_id)  # flushed above: every row is there
        await self.lifecycle(
            request, status, exit_code=exit_code, duration_ms=duration_ms, usage=usage, reason=reason, last_seq=last_seq
        )
        if dead_letter:
            attempts = request.attempt
            dead = DeadLetter(error=reason or status, attempts=attempts, timestamp=time.time(), request=request)
            self.dead_letters.add(dead)
            await self.bus.dead_letter(dead, request.execution_id)
        self._publish(request.execution_id, None)
        return True

    def flush(self) -> None:
        if self._pending_rows:
            rows, self._pending_rows = self._pending_rows, []
            self.store.append_output(rows)

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.flush()
