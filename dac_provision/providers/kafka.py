"""Kafka topics on any cluster: create-or-adopt, query, delete. The local and cloud targets both use it.

Connection settings come from the spec's ``kafka`` section; the SASL password is read from the
environment variable the spec names, at call time, so it is never stored in a spec or state file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from dac_runtime.records import Topics

from ..spec import KafkaSpec
from .base import ProviderError, Resource

TOPIC_EXISTS = 36


def topics_for(kafka: KafkaSpec) -> Topics:
    return Topics.with_prefix(kafka.topic_prefix)


def client_options(
    kafka: KafkaSpec, bootstrap: str | None = None, env: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """aiokafka client keyword arguments for this cluster (bootstrap, TLS, SASL)."""
    servers = bootstrap or kafka.bootstrap
    if not servers:
        raise ProviderError("kafka: no bootstrap servers (set kafka.bootstrap, or use the local provider)")
    options: dict[str, Any] = {"bootstrap_servers": servers, "security_protocol": kafka.security_protocol}
    if kafka.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = create_ssl_context(cafile=kafka.ca_file)
    if kafka.security_protocol.startswith("SASL"):
        password = env.get(kafka.password_env or "")
        if not password:
            raise ProviderError(f"kafka: environment variable {kafka.password_env} (the SASL password) is not set")
        options.update(
            sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.username, sasl_plain_password=password
        )
    return options


async def _admin(kafka: KafkaSpec, bootstrap: str | None) -> AIOKafkaAdminClient:
    options = client_options(kafka, bootstrap)
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=15_000)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise ProviderError(f"kafka: cannot connect to {options['bootstrap_servers']}: {exc}") from None
    return admin


async def ensure_topics(kafka: KafkaSpec, bootstrap: str | None = None) -> list[Resource]:
    """Create the deployment's topics, adopting any that already exist. Idempotent."""
    names = topics_for(kafka).all()
    admin = await _admin(kafka, bootstrap)
    try:
        configs = {"retention.ms": str(kafka.retention_ms)}
        response = await admin.create_topics(
            [
                NewTopic(
                    n, num_partitions=kafka.partitions, replication_factor=kafka.replication, topic_configs=configs
                )
                for n in names
            ]
        )
    except KafkaError as exc:
        raise ProviderError(f"kafka: creating topics failed: {type(exc).__name__}: {exc}") from None
    finally:
        await admin.close()
    resources, problems = [], []
    for topic, code, *rest in response.topic_errors:
        if code not in (0, TOPIC_EXISTS):
            problems.append(f"{topic}: error {code} {rest[0] if rest else ''}".strip())
            continue
        resources.append(
            Resource(
                "kafka-topic",
                topic,
                topic,
                created=code == 0,
                details={"partitions": kafka.partitions, "replication": kafka.replication},
            )
        )
    if problems:
        raise ProviderError("kafka: could not create " + "; ".join(problems))
    return resources


async def existing_topics(kafka: KafkaSpec, bootstrap: str | None = None) -> set[str]:
    admin = await _admin(kafka, bootstrap)
    try:
        return set(await admin.list_topics()) & set(topics_for(kafka).all())
    finally:
        await admin.close()


async def delete_topics(kafka: KafkaSpec, bootstrap: str | None = None, only: list[str] | None = None) -> list[str]:
    """Delete whichever of the deployment's topics exist (or of ``only``); returns their names. Idempotent."""
    admin = await _admin(kafka, bootstrap)
    wanted = set(topics_for(kafka).all()) if only is None else set(only) & set(topics_for(kafka).all())
    try:
        present = sorted(set(await admin.list_topics()) & wanted)
        if present:
            await admin.delete_topics(present)
        return present
    except KafkaError as exc:
        raise ProviderError(f"kafka: deleting topics failed: {type(exc).__name__}") from None
    finally:
        await admin.close()


# --- the "topics" resource, as the local and cloud targets record it -----------------------------


async def create_resource(kafka: KafkaSpec, bootstrap: str | None, previous: Resource | None, shared: bool) -> Resource:
    """Create or adopt the topics (on ``bootstrap``, else the spec's cluster); on a ``shared`` cluster
    remember which ones we created (only those are deleted later), carrying over earlier runs' list."""
    topics = await ensure_topics(kafka, bootstrap)
    created = [t.name for t in topics if t.created]
    if previous is not None and shared:
        created = sorted(set(created) | set(previous.details.get("created", [])))
    details = {"topics": [t.name for t in topics], "created": created}
    return Resource("kafka-topics", "topics", kafka.topic_prefix or "-", details=details)


async def query_resource(kafka: KafkaSpec, bootstrap: str | None, resource: Resource) -> tuple[bool, str]:
    try:
        present = await existing_topics(kafka, bootstrap)
    except ProviderError as exc:
        return False, str(exc)
    missing = sorted(set(resource.details.get("topics", [])) - present)
    return not missing, f"missing {', '.join(missing)}" if missing else ""
