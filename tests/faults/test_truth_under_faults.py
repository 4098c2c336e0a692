"""Faults with runs in flight and a queue behind them. After each: no execution lost, no agent started
twice for one execution, every final status what the worker itself observed, every output complete
and in seq order, no agent process or run folder left (see :mod:`.observe`)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.faults.observe import Recorded, judge
from tests.harness import holder_of, restart_orchestrator, start_worker, submit, until, wait_workers

pytestmark = pytest.mark.integration
#: Offline after 1 s of silence, a 6 s lease: a stall of a few seconds outlives the one, not the other.
FAST = {"DAC_HEARTBEAT_INTERVAL_MS": "200", "DAC_HEARTBEAT_TIMEOUT_MS": "1000", "DAC_LEASE_MS": "6000"}


async def _running(client, ids: list[str], count: int) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = [(await client.get(f"/api/executions/{e}")).json() for e in ids]
        running = [r["executionId"] for r in rows if r.get("status") == "running"]
        if len(running) >= count:
            return running
        await asyncio.sleep(0.05)
    raise TimeoutError(f"fewer than {count} running")


async def test_orchestrator_killed_while_runs_finish_and_a_queue_waits(system, tmp_path):
    recorded = Recorded(tmp_path)
    orch, _ = system(workers=2, command=recorded.command, worker_env=recorded.worker_env)
    await wait_workers(orch, 2)
    async with orch.client() as client:
        expected = {await submit(client, f"sleep:1 lines:{n + 3}"): n + 3 for n in range(8)}
        in_flight = await _running(client, list(expected), 2)
    orch.proc.send_signal(signal.SIGKILL)
    orch.proc.wait()
    # the agents finish while their workers cannot reach anyone: results wait in the workers' journals
    await until(lambda: set(in_flight) <= set(recorded.observed()), what="in-flight runs to finish")
    restart_orchestrator(orch)
    async with orch.client() as client:
        verdict = await judge("kill -9 orchestrator, 2 running + 6 queued", orch, client, recorded, expected)
    assert (verdict.lost, verdict.ran_twice, verdict.untruthful, verdict.problems) == (0, 0, 0, [])
    assert verdict.completed == 8


async def test_worker_stalled_past_the_offline_mark_then_resumed(system, tmp_path):
    recorded = Recorded(tmp_path)
    orch, workers = system(workers=2, command=recorded.command, worker_env=recorded.worker_env, **FAST)
    await wait_workers(orch, 2)
    async with orch.client() as client:
        stalled = await submit(client, "sleep:0.5 lines:4")
        holder, victim = await holder_of(client, workers, stalled)
        victim.send_signal(signal.SIGSTOP)
        try:
            expected = {await submit(client, f"lines:{n + 1}"): n + 1 for n in range(5)}  # for the other worker
            expected[stalled] = 4
            await asyncio.sleep(2.5)  # past the 1 s offline mark; the agent itself finished meanwhile
            listed = {w["workerId"]: w["state"] for w in (await client.get("/api/workers")).json()["workers"]}
            assert listed[holder] == "offline"
        finally:
            victim.send_signal(signal.SIGCONT)
        verdict = await judge("SIGSTOP worker 2.5 s (offline at 1 s), then SIGCONT", orch, client, recorded, expected)
    assert (verdict.lost, verdict.ran_twice, verdict.untruthful, verdict.problems) == (0, 0, 0, [])
    assert verdict.completed == 6


async def test_worker_killed_mid_run_with_a_queue_behind(system, tmp_path):
    recorded = Recorded(tmp_path)
    orch, workers = system(workers=2, command=recorded.command, worker_env=recorded.worker_env, **FAST)
    await wait_workers(orch, 2)
    async with orch.client() as client:
        doomed = await submit(client, "sleep:30 lines:2")
        holder, victim = await holder_of(client, workers, doomed)
        expected = {await submit(client, f"sleep:0.2 lines:{n + 1}"): n + 1 for n in range(6)}
        expected[doomed] = 2
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.append(start_worker(orch, holder, recorded.command, **recorded.worker_env))  # sweeps its leftovers
        verdict = await judge("kill -9 worker mid-run, 6 queued", orch, client, recorded, expected)
        final = (await client.get(f"/api/executions/{doomed}")).json()
    assert (final["status"], final["reason"]) == ("failed", "worker_lost")  # the truth: its worker died
    assert (verdict.lost, verdict.ran_twice, verdict.untruthful, verdict.problems) == (0, 0, 0, [])
    assert verdict.completed == 6
