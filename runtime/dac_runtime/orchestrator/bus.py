"""The orchestrator's Kafka producer: one place that knows which record goes to which topic.

Output, event and lifecycle records are sent without awaiting their delivery: the producer keeps
per-partition order (every record of one execution shares a key), and awaiting each would put a broker
round trip on the dispatch path and on every output line. Intake requests and dead letters are
awaited, because the caller acts on their having been stored.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ..records import DeadLetter, EventRecord, ExecRequest, LifecycleRecord, OutputRecord, Topics, encode

log = logging.getLogger("dac.orchestrator.bus")


class Bus:
    def __init__(self, bootstrap: str, topics: Topics, **client: Any) -> None:
        self.topics = topics
        self._bootstrap = bootstrap
        self._client = client
        self.producer: AIOKafkaProducer | None = None
        self.send_failures = 0

    async def start(self) -> None:
        # aiokafka binds to the running loop at construction, so the producer is made here.
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            linger_ms=0,
            max_batch_size=1 << 20,
            max_request_size=4 << 20,
            **self._client,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def request(self, request: ExecRequest) -> None:
        assert self.producer is not None, "Bus.start() first"
        await self.producer.send_and_wait(self.topics.exec, encode(request), key=request.persona_id.encode())

    async def lifecycle(self, record: LifecycleRecord) -> None:
        await self._send(self.topics.lifecycle, record.execution_id, encode(record), wait=False)

    async def output(self, record: OutputRecord) -> None:
        await self._send(self.topics.output, record.execution_id, encode(record), wait=False)

    async def event(self, record: EventRecord) -> None:
        await self._send(self.topics.events, record.execution_id, encode(record), wait=False)

    async def dead_letter(self, record: DeadLetter, key: str | None) -> None:
        await self._send(self.topics.dead_letter, key, encode(record), wait=True)

    async def _send(self, topic: str, key: str | None, value: bytes, *, wait: bool) -> None:
        assert self.producer is not None, "Bus.start() first"
        try:
            future = await self.producer.send(topic, value, key=key.encode() if key else None)
        except KafkaError as exc:
            self._failed(topic, exc)
            return
        if wait:
            try:
                await future
            except KafkaError as exc:
                self._failed(topic, exc)
        else:
            future.add_done_callback(
                lambda f: f.cancelled() or f.exception() is None or self._failed(topic, f.exception())
            )

    def _failed(self, topic: str, exc: BaseException | None) -> None:
        self.send_failures += 1
        log.error("could not produce to %s: %s", topic, type(exc).__name__ if exc else "unknown")
