"""kill -9 one of three orchestrators under load: nothing lost, nothing run twice, every status true.

Six workers, each listing the three orchestrators (rotated, so two start on each). Requests over many
personas keep every partition busy; mid-flight the orchestrator holding the most runs is killed. Its
workers dial the next orchestrator in their lists and re-attach their runs, finished ones included; its
partitions move to the survivors, which read again what it had not decided; its lease runs out and a
survivor takes over whatever had no worker to bring it back.
"""

from __future__ import annotations

import pytest

from tests.faults.observe import judge
from tests.harness import until, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_kill_9_one_of_three_under_load(cluster):
    c = cluster(3, DAC_LEASE_MS="6000")
    c.spread_workers(6)
    for orch in c.orchs:
        await wait_workers(orch, 2)
    async with c.client(0) as api:
        expected = await c.submit_all(api, [(f"p{i % 9}", f"lines:3 sleep:{1 + i % 3}", 3) for i in range(18)])

        async def running_everywhere() -> bool:
            return len([e for e in (await api.get("/api/executions?status=running")).json()["executions"]]) >= 4

        await until(running_everywhere, timeout=20, what="runs under way")
    counts = []
    for orch in c.orchs:
        async with orch.client() as api:
            workers = (await api.get("/api/workers")).json()["workers"]
            here = orch.env["DAC_ORCHESTRATOR_NAME"]
            counts.append(sum(1 for w in workers if w.get("executionId") and w["orchestrator"] == here))
    victim = counts.index(max(counts))
    c.kill(victim)
    survivor = c.orchs[(victim + 1) % 3]
    async with survivor.client() as api:
        verdict = await judge("kill -9 one of three", survivor, api, c.recorded, expected, timeout=90)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)


async def test_kill_every_orchestrator_then_restart_one(cluster):
    c = cluster(3, DAC_LEASE_MS="8000")
    c.spread_workers(6)
    for orch in c.orchs:
        await wait_workers(orch, 2)
    async with c.client(0) as api:
        expected = await c.submit_all(api, [(f"p{i % 6}", f"lines:2 sleep:{1 + i % 2}", 2) for i in range(12)])

        async def under_way() -> bool:
            return len((await api.get("/api/executions?status=running")).json()["executions"]) >= 3

        await until(under_way, timeout=20, what="runs under way")
    for i in range(3):
        c.kill(i)
    back = c.restart(0)  # the others' leases run out; it takes over everything they held
    async with back.client() as api:
        verdict = await judge("kill every orchestrator, restart one", back, api, c.recorded, expected, timeout=90)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)
