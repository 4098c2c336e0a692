"""The orchestrator's Kafka producer: which record goes to which topic, and what happens when Kafka
cannot take one.

Output, event and lifecycle records are sent without awaiting their delivery: the producer keeps
per-partition order (every record of one execution shares a key), and awaiting each would put a broker
round trip on the dispatch path and on every output line. Intake requests are awaited, because the
caller acts on their having been stored.

A record the broker cannot take (it is down, or the send failed) is not dropped: it is held in the
store, and while anything is held every new record joins the end of that queue, so a key's records
still reach Kafka in the order they were made. When the broker answers again the queue is sent, in
order, and emptied. The queue is bounded (``max_held``); what did not fit is counted, by topic, in
``dac_kafka_records_dropped_total`` and in ``/healthz``, never silently.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from prometheus_client import Counter

from ...records import DeadLetter, EventRecord, ExecRequest, LifecycleRecord, OutputRecord, Topics, encode
from ..store import Store

log = logging.getLogger("dac.orchestrator.bus")
DRAIN_BATCH = 500


@functools.lru_cache(maxsize=16384)
def _murmur2_index(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def keyed_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default placement (murmur2, as the Java client and librdkafka's ``murmur2_random``),
    remembered per key: every record of an execution shares its key, and the pure-Python hash was ~6 %
    of the orchestrator's CPU at 1,000 executions a second."""
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)
    return all_partitions[_murmur2_index(key, len(all_partitions))]


class Bus:
    def __init__(
        self, bootstrap: str, topics: Topics, store: Store, dropped: Counter, max_held: int = 100_000, **client: Any
    ) -> None:
        self.topics = topics
        self._bootstrap = bootstrap
        self._client = client
        self._store = store
        self._dropped_metric = dropped
        self._max_held = max_held
        self.producer: AIOKafkaProducer | None = None
        self.held = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.broker_up = True

    async def start(self) -> None:
        self.held = await self._store.held_count()  # a restart keeps what it could not send before
        # aiokafka binds to the running loop at construction, so the producer is made here. One for
        # everything: a second one for requests measured no faster beyond noise, and with it a CI run
        # of a broker coming back empty lost two re-queued requests.
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            linger_ms=0,
            max_batch_size=1 << 20,
            max_request_size=4 << 20,
            partitioner=keyed_partitioner,
            **self._client,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def probe(self) -> None:
        """One metadata round trip to the cluster (raises when no broker answers)."""
        assert self.producer is not None, "Bus.start() first"
        await self.producer.client.fetch_all_metadata()

    async def request(self, request: ExecRequest) -> None:
        assert self.producer is not None, "Bus.start() first"
        await self.producer.send_and_wait(self.topics.exec, encode(request), key=request.persona_id.encode())

    async def lifecycle(self, record: LifecycleRecord) -> None:
        await self._send(self.topics.lifecycle, record.execution_id, encode(record))

    async def output(self, record: OutputRecord) -> None:
        await self._send(self.topics.output, record.execution_id, encode(record))

    async def event(self, record: EventRecord) -> None:
        await self._send(self.topics.events, record.execution_id, encode(record))

    async def dead_letter(self, record: DeadLetter, key: str | None) -> None:
        await self._send(self.topics.dead_letter, key, encode(record))

    async def _send(self, topic: str, key: str | None, value: bytes) -> None:
        assert self.producer is not None, "Bus.start() first"
        raw_key = key.encode() if key else None
        if self.held or not self.broker_up:
            self._hold(topic, raw_key, value)
            return
        try:
            future = await self.producer.send(topic, value, key=raw_key)
        except KafkaError:
            self._hold(topic, raw_key, value)
            return
        future.add_done_callback(lambda f: self._sent(f, topic, raw_key, value))

    def _sent(self, future: asyncio.Future[Any], topic: str, key: bytes | None, value: bytes) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._hold(topic, key, value)

    def _hold(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self.held >= self._max_held:
            self.dropped[topic] += 1
            self._dropped_metric.labels(topic).inc()
            if self.dropped.total() == 1 or self.dropped.total() % 1000 == 0:
                log.error(
                    "kafka outbox full (%d records held): %d record(s) dropped so far", self.held, self.dropped.total()
                )
            return
        self._store.hold_record(topic, key, value)
        self.held += 1

    async def drain(self) -> int:
        """Send what is held, oldest first, a batch at a time; returns how many went. Stops at the first
        failure (the records stay held, in order, for the next try)."""
        assert self.producer is not None, "Bus.start() first"
        sent = 0
        while self.held:
            batch = await self._store.held_records(DRAIN_BATCH)
            if not batch:
                self.held = 0
                break
            futures = [await self.producer.send(topic, value, key=key) for _, topic, key, value in batch]
            await asyncio.gather(*futures)  # raises on the first failure: nothing is released
            self._store.release_records(batch[-1][0])
            self.held = max(0, self.held - len(batch))
            sent += len(batch)
        return sent

    def describe(self) -> str:
        parts = [f"{self.held} record(s) held"] if self.held else []
        if self.dropped:
            parts.append(f"{self.dropped.total()} dropped")
        return f": {', '.join(parts)}" if parts else ""
