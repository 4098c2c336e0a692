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
