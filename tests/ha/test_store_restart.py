"""PostgreSQL restarted under load: submissions fail fast with 503 and Retry-After while it is away,
nothing accepted is lost, and everything resumes when it is back (the orchestrators keep their leases:
the outage is shorter than the lease)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.observe import judge
from tests.harness import wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_postgres_restarted_under_load_loses_nothing_accepted(cluster, own_postgres):
    url = own_postgres.create_database("ha")
    c = cluster(2, store_url=url, DAC_ORCHESTRATOR_LEASE_MS="15000", DAC_STORE_TIMEOUT_MS="1000")
    a, b = c.orchs
    c.spread_workers(4)
    await wait_workers(a, 2)
    await wait_workers(b, 2)
    async with c.client(0) as api:
        expected = await c.submit_all(api, [(f"p{i}", f"lines:2 sleep:{1 + i % 3}", 2) for i in range(8)])
        await asyncio.sleep(0.5)
        own_postgres.stop()
        started = time.monotonic()
        refused = await api.post("/api/execute", json={"personaId": "p", "prompt": "lines:1"})
        took = time.monotonic() - started
        assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable", refused.text
        assert refused.headers["Retry-After"] == "1" and took < 5, took
        await asyncio.sleep(2)
        own_postgres.start()
        expected |= await c.submit_all(api, [(f"q{i}", "lines:3", 3) for i in range(4)])  # accepted again once back
        verdict = await judge("PostgreSQL restarted under load", a, api, c.recorded, expected, timeout=90)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)
    assert all(o.proc.poll() is None for o in c.orchs)  # nobody stepped down over a short outage
