"""Hostile and malformed input at every door: Kafka records, API bodies and headers, the worker socket.

Each case checks that the bad input gets a clear, specific refusal and that nothing else is harmed:
intake goes on, the service stays healthy, good requests still run.
"""

from __future__ import annotations

import json
import os
import stat

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from dac_runtime import protocol as p
from tests.harness import read_topic, submit, wait_terminal, wait_workers

pytestmark = pytest.mark.integration


async def _produce(orch, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=orch.bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(orch.topics.exec, value, key=b"p")
    finally:
        await producer.stop()


def _request(execution_id: str, prompt: str) -> bytes:
    return json.dumps({"executionId": execution_id, "personaId": "p", "prompt": prompt}).encode()


async def test_poison_records_are_dead_lettered_and_intake_goes_on(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    poison = [
        b'{"executionId": "bad-utf8", "personaId": "p", "prompt": "\xff\xfe"}',  # raised outside the decoder
        _request("nul-byte", "run \u0000 this"),
        _request("escape", "colour \u001b[31m red"),
        b"not json at all",
        b'{"executionId": "x"}',
    ]
    await _produce(orch, *poison, _request("after-poison", "lines:2 still alive"))
    dead = await read_topic(orch.bootstrap, orch.topics.dead_letter, lambda r: len(r) >= len(poison))
    reasons = [d["error"] for d in dead]
    assert reasons[0].startswith("invalid_utf8") and reasons[3].startswith("malformed_json"), reasons
    assert reasons[1].startswith("invalid_prompt") and "U+0000 at position 4" in reasons[1]
    assert reasons[2].startswith("invalid_prompt") and "U+001B" in reasons[2]
    assert reasons[4].startswith("invalid_request")
    assert all(d["raw"] for d in dead)  # the record itself is kept, as text
    async with orch.client() as client:
        assert (await wait_terminal(client, "after-poison"))["status"] == "completed"
        for refused in ("nul-byte", "escape"):
            assert (await client.get(f"/api/executions/{refused}")).status_code == 404  # never dispatched
        assert (await client.get("/healthz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'dac_dead_letters_total{reason="invalid_prompt"} 2.0' in metrics
    assert "Traceback" not in orch.log()


async def test_prompts_with_control_characters(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        for prompt, where in [("a\u0000b", "U+0000 at position 1"), ("\u0007bell", "U+0007"), ("x\u007f", "U+007F")]:
            r = await client.post("/api/execute", json={"personaId": "p", "prompt": prompt})
            assert r.status_code == 400 and r.json()["error"] == "invalid_prompt" and where in r.json()["message"]
        bad_utf8 = await client.post("/api/execute", content=b'{"personaId": "p", "prompt": "\xc3\x28"}')
        assert bad_utf8.status_code == 400 and bad_utf8.json()["error"] == "invalid_utf8"
        # tab, newline, carriage return, C1 controls and any other Unicode are ordinary prompt text
        allowed = await submit(client, "plain lines:1 tab\there\r\nnext \u0085 \u00e4 \U0001f600")
        final = await wait_terminal(client, allowed)
        assert final["status"] == "completed"
        text = (await client.get(f"/api/executions/{allowed}/stream")).text
    assert "tab\\there" in text and ("\\ud83d\\ude00" in text or "\U0001f600" in text)


async def test_http_details_allow_header_empty_filter_bearer_case_and_file_modes(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        wrong_method = await client.delete("/api/execute")
        assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
        assert wrong_method.json()["error"] == "method_not_allowed"
        empty = await client.get("/api/executions?status=")
        assert empty.status_code == 400 and "status must be one of" in empty.json()["message"]
        lowercase = await client.get("/api/workers", headers={"Authorization": f"bearer {orch.api_key}"})
        assert lowercase.status_code == 200
        await wait_terminal(client, await submit(client, "lines:1"))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(orch.ws_url, headers={"Authorization": f"BEARER {orch.worker_token}"})
        await ws.send_str(p.encode(p.Hello(worker_id="case-test", version="t", protocol=1)))
        assert isinstance(p.decode_orchestrator_frame((await ws.receive(timeout=5)).data), p.Ack)
        await ws.close()
    db = orch.workdir / "orchestrator.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


async def _hello(orch, worker_id: str, token: str) -> p.Ack | p.Error:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(orch.ws_url, headers={"Authorization": f"Bearer {token}"})
        await ws.send_str(p.encode(p.Hello(worker_id=worker_id, version="t", protocol=1)))
        frame = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
        await ws.close()
        return frame


async def test_a_registration_token_cannot_take_over_a_connected_worker(system):
    orch, _ = system(workers=1, DAC_REGISTRATION_MAX_WORKERS="3")
    await wait_workers(orch, 1)
    refused = await _hello(orch, "w0", orch.worker_token)  # the real worker w0 is connected
    assert isinstance(refused, p.Error) and refused.code == "worker_id_in_use"
    await wait_workers(orch, 1)  # w0 kept its socket and still works
    async with orch.client() as client:
        final = await wait_terminal(client, await submit(client, "lines:1"))
        assert final["status"] == "completed" and final["workerId"] == "w0"
    # one registration token registers at most DAC_REGISTRATION_MAX_WORKERS distinct ids
    first = await _hello(orch, "extra-1", orch.worker_token)
    second = await _hello(orch, "extra-2", orch.worker_token)
    assert isinstance(first, p.Ack) and isinstance(second, p.Ack)
    capped = await _hello(orch, "extra-3", orch.worker_token)
    assert isinstance(capped, p.Error) and capped.code == "registration_cap"
    # an offline id may be registered again (a replaced machine); its old credential stops working
    again = await _hello(orch, "extra-1", orch.worker_token)
    assert isinstance(again, p.Ack) and again.credential != first.credential
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused_at_upgrade:
        await _hello(orch, "extra-1", first.credential)
    assert refused_at_upgrade.value.status == 401
