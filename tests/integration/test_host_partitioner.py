"""A host application on librdkafka places a persona's requests where the orchestrator's producer does,
once it uses the partitioner the README documents (examples/produce_librdkafka.py)."""

from __future__ import annotations

import sys

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.harness import ROOT

pytestmark = pytest.mark.integration
PERSONAS = [f"persona-{n}" for n in range(40)]


async def _partitions_via_aiokafka(bootstrap: str, topic: str) -> dict[str, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return {p: (await producer.send_and_wait(topic, b"{}", key=p.encode())).partition for p in PERSONAS}
    finally:
        await producer.stop()


async def _partitions_on_topic(bootstrap: str, topic: str, count: int) -> dict[str, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, int] = {}
    try:
        while len(seen) < count:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                for message in messages:
                    seen[message.key.decode()] = tp.partition
    finally:
        await consumer.stop()
    return seen


async def test_the_documented_librdkafka_partitioner_matches_the_orchestrators(broker, topics):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import produce_librdkafka as example
    finally:
        sys.path.pop(0)
    expected = await _partitions_via_aiokafka(broker.bootstrap, topics.output)
    kafka = example.producer(broker.bootstrap)
    for persona in PERSONAS:
        example.submit(kafka, persona, "lines:1", topic=topics.exec)
    assert kafka.flush(10) == 0
    assert await _partitions_on_topic(broker.bootstrap, topics.exec, len(PERSONAS)) == expected

    # librdkafka's default would not have matched: this is what the setting is for
    from confluent_kafka import Producer

    default = Producer({"bootstrap.servers": broker.bootstrap})
    for persona in PERSONAS:
        default.produce(topics.events, b"{}", key=persona.encode())
    assert default.flush(10) == 0
    assert await _partitions_on_topic(broker.bootstrap, topics.events, len(PERSONAS)) != expected
