"""The topics provider against the real broker: create, adopt, query, delete, clear errors."""

from __future__ import annotations

import uuid

import pytest

from dac_provision.providers.base import ProviderError
from dac_provision.providers.kafka import client_options, delete_topics, ensure_topics, existing_topics
from dac_provision.spec import KafkaSpec
from tests.harness import free_port

pytestmark = pytest.mark.integration


async def test_create_adopt_delete(broker):
    kafka = KafkaSpec(bootstrap=broker.bootstrap, topic_prefix=f"p{uuid.uuid4().hex[:6]}.", partitions=2)
    first = await ensure_topics(kafka)
    assert [r.created for r in first] == [True] * 5
    assert {r.name.split(".", 1)[1] for r in first} == {
        "persona.exec.v1",
        "persona.output.v1",
        "persona.lifecycle.v1",
        "persona.events.v1",
        "persona.exec.dlq.v1",
    }
    again = await ensure_topics(kafka)
    assert [r.created for r in again] == [False] * 5  # adopted, not duplicated
    assert await existing_topics(kafka) == {r.name for r in first}
    assert sorted(await delete_topics(kafka)) == sorted(r.name for r in first)
    assert await existing_topics(kafka) == set()
    assert await delete_topics(kafka) == []


async def test_unreachable_broker_is_a_clear_error():
    kafka = KafkaSpec(bootstrap=f"127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError, match=r"cannot connect to 127\.0\.0\.1"):
        await ensure_topics(kafka)


def test_sasl_password_comes_from_the_named_variable_only():
    kafka = KafkaSpec(
        bootstrap="b:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        username="u",
        password_env="KAFKA_PW",
    )
    with pytest.raises(ProviderError, match="KAFKA_PW") as info:
        client_options(kafka, env={})
    assert "hunter2" not in str(info.value)
    options = client_options(kafka, env={"KAFKA_PW": "hunter2"})
    assert options["sasl_plain_password"] == "hunter2" and options["sasl_mechanism"] == "SCRAM-SHA-512"
