"""A persona's ``maxConcurrent`` holds over the deployment, not per orchestrator.

The persona's requests are read by one orchestrator with a single worker; its peer has three idle
ones. The reader runs one request itself and hands the next to the peer; with only its own runs
counted it handed off a third too (three at once for a limit of two). Every 50 ms the store's view
of what runs is sampled until all are done: never more than the limit, and the limit is reached.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from dac_runtime.orchestrator.dispatch.bus import keyed_partitioner
from tests.faults.observe import judge
from tests.harness import until

pytestmark = [pytest.mark.integration, pytest.mark.ha]

LIMIT = 2


async def test_a_persona_never_runs_more_than_its_limit_across_orchestrators(cluster):
    c = cluster(2)
    reader, peer = c.orchs

    async def partitions() -> tuple[set[int], set[int]]:
        held = []
        for orch in c.orchs:
            async with orch.client() as api:
                held.append(set((await api.get("/healthz")).json()["partitions"]))
        return held[0], held[1]

    async def shared_out() -> bool:
        mine, theirs = await partitions()
        return bool(mine) and bool(theirs) and mine | theirs == {0, 1, 2} and not mine & theirs

    await until(shared_out, timeout=30, what="the partitions shared between the two")
    mine, _ = await partitions()
    names = (f"limited-{i}" for i in range(1000))
    persona = next(name for name in names if keyed_partitioner(name.encode(), [0, 1, 2], []) in mine)
    c.start_worker("r0", reader.ws_url)
    for i in range(3):
        c.start_worker(f"p{i}", peer.ws_url)
    async with reader.client() as api:
        await until(lambda: _idle(api, 4), timeout=20, what="four idle workers over the deployment")
        assert (await api.put(f"/api/personas/{persona}", json={"maxConcurrent": LIMIT})).status_code in (200, 201)
        expected = await c.submit_all(api, [(persona, "lines:1 sleep:1.5", 1) for _ in range(6)])
        most, deadline = 0, time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = (await api.get("/api/executions?limit=50")).json()["executions"]
            mine_rows = [r for r in rows if r["executionId"] in expected]
            most = max(most, sum(1 for r in mine_rows if r["status"] in ("dispatched", "running")))
            if len(mine_rows) == len(expected) and all(r["status"] == "completed" for r in mine_rows):
                break
            await asyncio.sleep(0.05)
        verdict = await judge("maxConcurrent over two orchestrators", reader, api, c.recorded, expected, timeout=60)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)
    assert most == LIMIT, f"at most {most} ran at once (limit {LIMIT})"
    async with reader.client() as api:
        metrics = (await api.get("/metrics")).text
    given = [line for line in metrics.splitlines() if line.startswith('dac_handoffs_total{direction="given"}')]
    assert given and float(given[0].split()[-1]) >= 1, given  # the peer's workers ran some


async def _idle(api, count: int) -> bool:
    return (await api.get("/api/capacity")).json()["workers"].get("idle", 0) >= count
