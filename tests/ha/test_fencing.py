"""Fencing: an orchestrator paused past its lease (SIGSTOP, then SIGCONT) must not act on what it lost.

Two orchestrators on one PostgreSQL store; one worker on each (each lists both, its own first). A run
goes to the first one's worker; that orchestrator is paused for several leases. Its worker gives up the
silent socket, dials the other, and the run is re-attached and finishes there. When the paused one runs
again it knows at once that its lease is gone: /healthz says 503, it exits with code 4, and nothing it
held is recorded by it: not in the store, not on Kafka (the lifecycle topic carries exactly one final
status for the run, the one its worker saw).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.faults.observe import judge
from tests.harness import read_topic, submit, until, wait_status, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]
PASSING = ("queued", "dispatched", "running")


async def test_a_paused_orchestrator_steps_down_and_records_nothing_it_lost(cluster):
    c = cluster(2)
    a, b = c.orchs
    c.start_worker("wa", f"{a.ws_url},{b.ws_url}")
    c.start_worker("wb", f"{b.ws_url},{a.ws_url}")
    await wait_workers(a, 1)
    await wait_workers(b, 1)
    async with c.client(1) as api:
        long = await submit(api, "lines:4 sleep:5", persona="fenced")
        await wait_status(api, long, "running")
        holder = (await api.get(f"/api/executions/{long}")).json()["workerId"]
    index = 0 if holder == "wa" else 1
    paused, other = c.orchs[index], c.orchs[1 - index]
    c.pause(index)
    try:
        async with other.client() as api:
            # The worker gives the silent socket up and dials the other; the run is re-attached there.
            async def moved() -> bool:
                workers = (await api.get("/api/workers")).json()["workers"]
                here = other.env["DAC_ORCHESTRATOR_NAME"]
                return any(
                    w["workerId"] == holder and w["executionId"] == long and w["orchestrator"] == here for w in workers
                )

            await until(moved, timeout=20, what="the run's worker re-attached to the other orchestrator")
            await asyncio.sleep(3 * int(c.orchs[0].env["DAC_ORCHESTRATOR_LEASE_MS"]) / 1000)  # well past the lease
            verdict = await judge("paused past its lease", other, api, c.recorded, {long: 4}, timeout=30)
    finally:
        c.resume(index)
    assert paused.proc.wait(timeout=20) == 4, "a stepped-down orchestrator exits with code 4"
    assert "stepping down" in paused.log()
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    # (the paused one has exited: whatever it produced is on the topic already)
    records = await read_topic(
        other.bootstrap, other.topics.lifecycle, lambda rs: any(r["status"] == "completed" for r in rs), timeout=20
    )
    finals = [r["status"] for r in records if r["executionId"] == long and r["status"] not in PASSING]
    assert finals == ["completed"]  # one final status, the worker's: nothing from the orchestrator that lost it
    async with httpx.AsyncClient(timeout=1) as probe:
        with pytest.raises(httpx.HTTPError):
            await probe.get(f"{paused.url}/healthz")  # gone: its supervisor starts it afresh
