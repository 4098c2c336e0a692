"""The orchestrator reads Kafka TLS and SASL settings from its environment, with one line per problem."""

from __future__ import annotations

import ssl

import pytest

from dac_runtime.envconfig import ConfigError, EnvReader
from dac_runtime.orchestrator.config import load_settings

BASE = {"DAC_MASTER_KEY": "ab" * 32, "DAC_KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


def test_plaintext_is_the_default_and_adds_no_tls_or_sasl():
    settings = load_settings(EnvReader(dict(BASE)))
    assert settings.kafka_client() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_builds_a_verifying_context_and_keeps_the_password_out_of_repr(tmp_path):
    import trustme

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = dict(
        BASE,
        DAC_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        DAC_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        DAC_KAFKA_USERNAME="svc",
        DAC_KAFKA_PASSWORD="hunter2-kafka",
        DAC_KAFKA_CA_FILE=str(ca_file),
    )
    settings = load_settings(EnvReader(env))
    options = settings.kafka_client()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["sasl_plain_password"] == "hunter2-kafka"
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "hunter2-kafka" not in repr(settings)
    assert "DAC_KAFKA_PASSWORD" not in env  # read once, then dropped from the environment


def test_every_kafka_security_problem_is_reported_at_once():
    env = dict(BASE, DAC_KAFKA_SECURITY_PROTOCOL="SASL_SSL", DAC_KAFKA_SASL_MECHANISM="GSSAPI", DAC_KAFKA_CA_FILE="/no")
    with pytest.raises(ConfigError) as caught:
        load_settings(EnvReader(env))
    text = str(caught.value)
    assert "DAC_KAFKA_SASL_MECHANISM must be one of" in text
    assert "needs DAC_KAFKA_USERNAME and DAC_KAFKA_PASSWORD" in text
    assert "DAC_KAFKA_CA_FILE /no is not a file" in text


def test_event_loop_is_uvloop_by_default_asyncio_on_request_and_a_typo_is_refused():
    import asyncio

    import uvloop

    from dac_runtime.orchestrator.__main__ import new_event_loop

    for choice, kind in (("auto", uvloop.Loop), ("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        loop = new_event_loop(choice)
        try:
            assert isinstance(loop, kind), choice
            assert (choice == "asyncio") != isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    with pytest.raises(ConfigError, match=r"- DAC_EVENT_LOOP must be auto, uvloop or asyncio, not 'uv'$"):
        new_event_loop("uv")
