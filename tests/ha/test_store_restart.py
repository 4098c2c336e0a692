"""PostgreSQL restarted under load: submissions fail fast with 503 and Retry-After while it is away,
nothing accepted is lost, and everything resumes when it is back (the orchestrators keep their leases:
the outage is shorter than the lease)."""

from __future__ import annotations

import asyncio
import time

import pytest

from dac_provision.providers.postgres import PostgresServer
from dac_provision.providers.processes import free_port
from tests.faults.observe import judge
from tests.harness import wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]


@pytest.fixture
def own_postgres():
    with PostgresServer.scratch(free_port()) as server:
        yield server


async def test_postgres_restarted_under_load_loses_nothing_accepted(cluster, own_postgres):
    url = own_postgres.create_database("ha")
    c = cluster(2, store_url=url, DAC_ORCHESTRATOR_LEASE_MS="15000", DAC_STORE_TIMEOUT_MS="1000")
    a, b = c.orchs
    for i in range(4):
        c.start_worker(f"w{i}", f"{a.ws_url},{b.ws_url}" if i % 2 else f"{b.ws_url},{a.ws_url}")
    await wait_workers(a, 2)
    await wait_workers(b, 2)
    expected: dict[str, int] = {}
    async with c.client(0) as api:
        for i in range(8):
            r = await api.post("/api/execute", json={"personaId": f"p{i}", "prompt": f"lines:2 sleep:{1 + i % 3}"})
            assert r.status_code == 202, r.text
            expected[r.json()["executionId"]] = 2
        await asyncio.sleep(0.5)
        own_postgres.stop()
        started = time.monotonic()
        refused = await api.post("/api/execute", json={"personaId": "p", "prompt": "lines:1"})
        took = time.monotonic() - started
        assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable", refused.text
        assert refused.headers["Retry-After"] == "1" and took < 5, took
        await asyncio.sleep(2)
        own_postgres.start()
        for i in range(4):  # accepted again once it is back
            r = await api.post("/api/execute", json={"personaId": f"q{i}", "prompt": "lines:3"})
            assert r.status_code == 202, r.text
            expected[r.json()["executionId"]] = 3
        verdict = await judge("PostgreSQL restarted under load", a, api, c.recorded, expected, timeout=90)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)
    assert all(o.proc.poll() is None for o in c.orchs)  # nobody stepped down over a short outage
