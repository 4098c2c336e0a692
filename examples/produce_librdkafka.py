"""Submit executions straight to Kafka from a librdkafka-based client (confluent-kafka here; the same
setting exists in every librdkafka binding: Go, .NET, C/C++, Node's node-rdkafka).

Requests are keyed by personaId, and the orchestrator and the Java-compatible clients (aiokafka,
kafka-python, the Java client) place a key with murmur2. librdkafka's default partitioner is
``consistent_random`` (CRC32), which puts the same persona on another partition, so one persona's
requests could be taken out of order. Set ``partitioner`` to ``murmur2_random``.

    python examples/produce_librdkafka.py 127.0.0.1:9092 "lines:2 hello"      # needs confluent-kafka
"""

from __future__ import annotations

import json
import sys
import uuid

from confluent_kafka import Producer

EXEC_TOPIC = "persona.exec.v1"  # with the deployment's topic prefix, if it has one


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # the partition the orchestrator's own producer picks
            "enable.idempotence": True,
            "acks": "all",
        }
    )


def submit(kafka: Producer, persona_id: str, prompt: str, topic: str = EXEC_TOPIC) -> str:
    """Queue one execution; returns its id (retrying with the same id is safe: executions are idempotent)."""
    execution_id = uuid.uuid4().hex
    request = {"executionId": execution_id, "personaId": persona_id, "prompt": prompt}
    kafka.produce(topic, json.dumps(request).encode(), key=persona_id.encode())
    return execution_id


if __name__ == "__main__":
    kafka = producer(sys.argv[1])
    print(submit(kafka, "reviewer", sys.argv[2]))
    if kafka.flush(10) != 0:
        sys.exit("the request was not delivered within 10 s")
