"""A rebalance hands waiting requests on: partitions that move to a joining orchestrator take with them
the requests the old owner held back (parked for their persona's ``maxConcurrent``), uncommitted, for
the new owner to read again; nothing waits twice, runs twice or is stranded.

One orchestrator holds every partition and all the workers; three personas of ``maxConcurrent = 1``,
one keyed to each partition, have one run under way and two parked each. A second orchestrator joins
the group: at least one partition moves to it, and with it that persona's parked requests. It has no
worker, so it hands them to the store for the first one's idle workers (the cross-orchestrator path),
where they wait their persona's turn again.
"""

from __future__ import annotations

import pytest

from dac_runtime.orchestrator.dispatch.bus import keyed_partitioner
from tests.faults.observe import judge
from tests.harness import until, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.ha]


def one_persona_per_partition(partitions: int = 3) -> list[str]:
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"narrow-{i}"
        found.setdefault(keyed_partitioner(name.encode(), list(range(partitions)), []), name)
        if len(found) == partitions:
            break
    return [found[p] for p in sorted(found)]


async def test_a_joining_orchestrator_takes_the_parked_requests_of_its_partitions(cluster):
    c = cluster(2, DAC_LEASE_MS="8000")
    c.kill(1)  # the first holds every partition once the group notices
    holder, joiner = c.orchs
    await c.workers_at(holder, 4)
    personas = one_persona_per_partition()
    async with holder.client() as api:
        for persona in personas:
            assert (await api.put(f"/api/personas/{persona}", json={"maxConcurrent": 1})).status_code in (200, 201)
        # One run per persona first: once each is done, the holder reads every partition.
        expected = await c.submit_all(api, [(p, "lines:1", 1) for p in personas])
        for execution_id in expected:
            assert (await wait_terminal(api, execution_id))["status"] == "completed"
        expected |= await c.submit_all(api, [(p, "lines:2 sleep:8", 2) for p in personas for _ in range(3)])

        async def one_each_running_the_rest_parked() -> bool:
            running = (await api.get("/api/executions?status=running")).json()["executions"]
            parked = (await api.get("/api/capacity")).json()["waitingByPersona"]
            return len(running) == len(personas) and sum(parked.values()) == 2 * len(personas)

        await until(one_each_running_the_rest_parked, timeout=30, what="one run per persona, the rest parked")
    c.restart(1)
    async with holder.client() as api:
        verdict = await judge("a rebalance hands parked requests on", holder, api, c.recorded, expected, timeout=90)
    assert verdict.lost == verdict.ran_twice == verdict.untruthful == 0, verdict.problems
    assert verdict.completed == len(expected)
    assert "left for their new owner" in holder.log()  # it let go of what its lost partitions held
    async with joiner.client() as api:
        metrics = (await api.get("/metrics")).text
    given = [line for line in metrics.splitlines() if line.startswith('dac_handoffs_total{direction="given"}')]
    assert given and float(given[0].split()[-1]) >= 1, given  # the new owner read them again, and passed them on
