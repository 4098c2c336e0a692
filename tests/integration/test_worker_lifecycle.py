"""Worker lifecycle: SIGTERM drains, a second SIGTERM cancels, silent workers are reaped, burst mode."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from dac_runtime import protocol as p
from tests.harness import start_worker, submit, wait_status, wait_terminal, wait_workers

pytestmark = pytest.mark.integration


async def test_sigterm_drains_then_exits(system):
    orch, workers = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "sleep:1.5 lines:2")
        await wait_status(client, execution_id, "running")
        workers[0].send_signal(signal.SIGTERM)
        assert (await wait_terminal(client, execution_id))["status"] == "completed"
    assert await asyncio.to_thread(workers[0].wait, 10) == 0
    async with orch.client() as client:
        listed = (await client.get("/api/workers")).json()["workers"]
    assert listed == []  # it said goodbye with nothing running: gone from the pool, not "offline"


async def test_second_sigterm_cancels_the_run(system):
    orch, workers = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "sleep:30")
        await wait_status(client, execution_id, "running")
        workers[0].send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        workers[0].send_signal(signal.SIGTERM)
        assert (await wait_terminal(client, execution_id, timeout=15))["status"] == "cancelled"
    assert await asyncio.to_thread(workers[0].wait, 10) == 0


async def test_exit_after_job_runs_one_execution(system):
    orch, workers = system(workers=0)
    burst = start_worker(orch, "burst", DAC_EXIT_AFTER_JOB="true")
    workers.append(burst)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "lines:1")
        assert (await wait_terminal(client, execution_id))["status"] == "completed"
    assert await asyncio.to_thread(burst.wait, 10) == 0


async def test_silent_worker_is_reaped(system):
    orch, _ = system(workers=0, DAC_HEARTBEAT_INTERVAL_MS="200", DAC_HEARTBEAT_TIMEOUT_MS="1000")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(orch.ws_url, headers={"Authorization": f"Bearer {orch.worker_token}"})
        await ws.send_str(p.encode(p.Hello(worker_id="mute", version="t", protocol=1)))
        ack = p.decode_orchestrator_frame((await ws.receive(timeout=5)).data)
        assert ack.heartbeat_interval_ms == 200  # the server tells the worker its interval
        await ws.send_str(p.encode(p.Ready()))
        await wait_workers(orch, 1)
        closed = await ws.receive(timeout=10)  # no heartbeats sent: the orchestrator hangs up
        assert closed.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
    await wait_workers(orch, 1, state="offline")


async def test_single_use_registration_token_admits_one_machine_which_then_lives_on_its_credential(system):
    orch, workers = system(workers=0)
    async with orch.client() as client:
        minted = await client.post("/api/worker-tokens", json={"uses": 1, "ttlSeconds": 600})
        assert minted.status_code == 201 and minted.json()["token"].startswith("dacr_")
        token = minted.json()["token"]
        assert (await client.post("/api/worker-tokens", json={"uses": 0})).status_code == 400
    first = start_worker(orch, "boot-1", DAC_WORKER_TOKEN=token)
    workers.append(first)
    await wait_workers(orch, 1)
    assert (orch.workdir / "boot-1.credential").exists()  # exchanged on hello

    # A second machine holding the same (spent) token is turned away.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(orch.ws_url, headers={"Authorization": f"Bearer {token}"})
        assert refused.value.status == 401

    # The first worker restarts (a reboot) with the spent token still in its environment: its credential wins.
    first.send_signal(signal.SIGTERM)
    await asyncio.to_thread(first.wait, 10)
    workers.append(start_worker(orch, "boot-1", DAC_WORKER_TOKEN=token))
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "lines:1")
        assert (await wait_terminal(client, execution_id))["status"] == "completed"
