"""No request waits while a worker anywhere is idle, whichever orchestrator read it.

Two orchestrators share the exec topic's partitions; only the second has workers. Requests over many
personas land on both; what the first reads, it hands off through the store, and the second runs it at
once. Nothing runs twice (the store's claim decides), and the first's metrics say how many it gave.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.observe import judge
from tests.harness import wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_a_request_read_where_no_worker_is_idle_runs_on_a_peers_idle_worker(cluster):
    c = cluster(2)
    reader, runner = c.orchs
    await c.workers_at(runner, 3)
    await wait_workers(reader, 0)
    expected: dict[str, int] = {}
    async with c.client(0) as api:
        started = time.monotonic()
        for i in range(12):
            r = await api.post("/api/execute", json={"personaId": f"p{i}", "prompt": "lines:2"})
            assert r.status_code == 202, r.text
            expected[r.json()["executionId"]] = 2
        for execution_id in expected:
            await wait_terminal(api, execution_id, timeout=30)
        took = time.monotonic() - started
        verdict = await judge("handed off to a peer's idle workers", runner, api, c.recorded, expected)
        given = (await api.get("/metrics")).text
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert took < 15, f"12 short runs on 3 idle workers took {took:.1f} s"
    handed = [line for line in given.splitlines() if line.startswith('dac_handoffs_total{direction="given"}')]
    assert handed and float(handed[0].split()[-1]) >= 1, handed  # the reader did read some, and gave them on
