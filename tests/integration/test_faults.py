"""Lost workers, a restarted orchestrator, bad frames and bad API bodies: clear errors, nothing lost."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest

from dac_runtime import protocol as p
from tests.harness import holder_of, restart_orchestrator, submit, wait_status, wait_terminal, wait_workers

pytestmark = pytest.mark.integration


async def test_sigkilled_worker_fails_its_execution_and_the_rest_go_on(system):
    orch, workers = system(workers=2, DAC_LEASE_MS="1500")
    await wait_workers(orch, 2)
    async with orch.client() as client:
        doomed = await submit(client, "sleep:4")
        holder, victim = await holder_of(client, workers, doomed)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        final = await wait_terminal(client, doomed, timeout=15)
        assert final["status"] == "failed" and final["reason"] == "worker_lost"
        others = [await submit(client, "lines:3") for _ in range(3)]
        assert [(await wait_terminal(client, e))["status"] for e in others] == ["completed"] * 3
        listed = {w["workerId"]: w["state"] for w in (await client.get("/api/workers")).json()["workers"]}
    assert listed[holder] == "offline"


async def test_orchestrator_restart_mid_run_reattaches_the_execution(system):
    orch, _ = system(workers=1, worker_env={"DAC_LOG_LEVEL": "DEBUG"})
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "sleep:2.5 lines:5")
        await wait_status(client, execution_id, "running")
    orch.proc.send_signal(signal.SIGKILL)
    orch.proc.wait()
    restart_orchestrator(orch)
    async with orch.client() as client:
        final = await wait_terminal(client, execution_id, timeout=30)
        assert final["status"] == "completed", orch.log()[-2000:]
        lines = []
        async with client.stream("GET", f"/api/executions/{execution_id}/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    lines.append(json.loads(line[6:]))
    text = "".join(item.get("chunk", "") for item in lines)
    assert all(f'"line {n}"' in text for n in range(1, 6))
    assert "re-attached execution" in orch.log()


async def _raw_worker(orch, token=None):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(orch.ws_url, headers={"Authorization": f"Bearer {token or orch.worker_token}"})
    return session, ws


async def test_bad_frames_get_error_frames_and_the_connection_survives(system):
    orch, _ = system(workers=0)
    session, ws = await _raw_worker(orch)
    try:
        await ws.send_str(p.encode(p.Hello(worker_id="raw-1", version="t", protocol=p.PROTOCOL_VERSION)))
        ack = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
        assert isinstance(ack, p.Ack) and ack.credential
        for garbage, code in [
            ("{nope", "malformed_json"),
            ('{"type": "warp"}', "invalid_frame"),
            ('{"type": "stdout", "seq": "x"}', "invalid_frame"),
            ('{"type": "ready", "pad": "' + "x" * (p.MAX_FRAME_BYTES + 10) + '"}', "frame_too_large"),
        ]:
            await ws.send_str(garbage)
            reply = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
            assert isinstance(reply, p.Error) and reply.code == code
        await ws.send_bytes(b"\x00\x01")
        reply = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
        assert reply.code == "binary_frame"
        await ws.send_str(p.encode(p.Ready()))
        await wait_workers(orch, 1)  # still registered, now idle
    finally:
        await ws.close()
        await session.close()
    async with orch.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'dac_frame_errors_total{code="malformed_json"} 1.0' in metrics


async def test_incompatible_protocol_and_wrong_tokens_are_refused(system):
    orch, _ = system(workers=0)
    session, ws = await _raw_worker(orch)
    try:
        await ws.send_str(p.encode(p.Hello(worker_id="old", version="0", protocol=99)))
        reply = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
        assert reply.code == "incompatible_protocol"
        assert (await ws.receive(timeout=5)).type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    finally:
        await session.close()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(orch.ws_url, headers={"Authorization": "Bearer dacr_wrong"})
        assert info.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(orch.ws_url)
    # a per-worker credential only works for the worker it was issued to
    session, ws = await _raw_worker(orch)
    await ws.send_str(p.encode(p.Hello(worker_id="a", version="t", protocol=1)))
    credential = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data).credential
    await ws.close()
    await session.close()
    session, ws = await _raw_worker(orch, token=credential)
    try:
        await ws.send_str(p.encode(p.Hello(worker_id="b", version="t", protocol=1)))
        assert p.decode_orchestrator_frame((await ws.receive(timeout=5)).data).code == "token_mismatch"
    finally:
        await session.close()


async def test_bad_api_requests_get_clear_errors(system):
    orch, _ = system(workers=0, DAC_MAX_BODY_BYTES="4096")
    async with orch.client() as client:
        cases = [
            (client.post("/api/execute", content=b"{oops"), 400, "malformed_json"),
            (client.post("/api/execute", content=b""), 400, "empty_body"),
            (client.post("/api/execute", json={"personaId": "p"}), 400, "invalid_body"),
            (client.post("/api/execute", json={"personaId": "p", "prompt": "x", "promt": "typo"}), 400, "invalid_body"),
            (client.post("/api/execute", json={"personaId": "p", "prompt": "x", "timeoutMs": -5}), 400, "invalid_body"),
            (client.post("/api/execute", json={"personaId": "../p", "prompt": "x"}), 400, "invalid_body"),
            (client.post("/api/execute", json={"personaId": "p", "prompt": "x" * 10_000}), 413, "body_too_large"),
            (client.get("/api/executions/nope"), 404, "not_found"),
            (client.post("/api/executions/nope/cancel"), 404, "not_found"),
            (client.put("/api/credentials/lower-case", json={"value": "v"}), 400, "invalid_name"),
            (client.post("/api/team", json={"name": "x", "role": "admin"}), 400, "invalid_body"),
        ]
        for call, status, code in cases:
            r = await call
            assert (r.status_code, r.json()["error"]) == (status, code), r.text
        assert (
            "$.timeoutMs"
            in (await client.post("/api/execute", json={"personaId": "p", "prompt": "x", "timeoutMs": "5"})).json()[
                "message"
            ]
        )
        anonymous = await client.get("/api/workers", headers={"Authorization": ""})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
        wrong = await client.get("/api/workers", headers={"Authorization": "Bearer dac_wrong"})
        assert wrong.status_code == 401
        member = (await client.post("/api/team", json={"name": "dev", "role": "member"})).json()
        as_member = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await client.get("/api/workers", headers=as_member)).status_code == 200
        assert (await client.get("/api/team", headers=as_member)).status_code == 403
        assert (await client.get("/healthz")).status_code == 200
    assert orch.proc.poll() is None


async def test_sse_serves_several_subscribers(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "sleep:0.5 lines:30")

        async def follow():
            items = []
            async with client.stream("GET", f"/api/executions/{execution_id}/stream") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        items.append(json.loads(line[6:]))
            return items

        streams = await asyncio.gather(follow(), follow(), follow())
    outputs = ["".join(i.get("chunk", "") for i in s if i["kind"] == "stdout") for s in streams]
    assert outputs[0] == outputs[1] == outputs[2] and '"line 30"' in outputs[0]
    for s in streams:
        assert s[-1]["kind"] == "lifecycle" and s[-1]["status"] == "completed"
        seqs = [i["seq"] for i in s if "seq" in i]
        assert seqs == sorted(set(seqs))
