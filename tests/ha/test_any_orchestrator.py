"""Every orchestrator answers for every execution: one run by a worker of the first is read, followed
(SSE) and cancelled through the second, which owns nothing of it."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.harness import submit, until, wait_status, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_a_run_under_one_orchestrator_is_followed_and_cancelled_through_another(cluster):
    c = cluster(2)
    owner, other = c.orchs
    c.start_worker("w0", owner.ws_url)
    await wait_workers(owner, 1)
    async with owner.client() as at_owner, other.client() as api:
        followed = await submit(api, "lines:3", persona="followed")  # whoever reads it, w0 runs it
        stream = (await api.get(f"/api/executions/{followed}/stream")).text  # until its end, through `other`
        items = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
        seqs = [i["seq"] for i in items if "seq" in i]
        assert seqs == sorted(set(seqs)) and seqs, items
        assert "line 3" in "".join(i.get("chunk", "") for i in items)
        assert items[-1]["kind"] == "lifecycle" and items[-1]["status"] == "completed"

        long = await submit(api, "lines:1 sleep:60", persona="cancelled")
        await wait_status(api, long, "running")
        assert (await at_owner.get(f"/api/executions/{long}")).json()["workerId"] == "w0"
        reading = asyncio.ensure_future(api.get(f"/api/executions/{long}/stream"))
        cancel = await api.post(f"/api/executions/{long}/cancel")
        assert cancel.status_code == 202
        final = await wait_terminal(api, long, timeout=15)
        assert final["status"] == "cancelled"
        stream = (await asyncio.wait_for(reading, 15)).text
        assert '"status":"cancelled"' in stream.replace(" ", "")
    await until(
        lambda: f"execution {long} finished: cancelled" in c.recorded.root.joinpath("w0.log").read_text(),
        timeout=10,
        what="the worker's own word that it cancelled",
    )


async def test_every_orchestrator_lists_every_worker_of_the_deployment(cluster):
    c = cluster(2)
    a, b = c.orchs
    c.start_worker("wa", a.ws_url)
    c.start_worker("wb", b.ws_url)
    await wait_workers(a, 1)
    await wait_workers(b, 1)
    for orch in (a, b):
        async with orch.client() as api:
            listed = {w["workerId"]: w["orchestrator"] for w in (await api.get("/api/workers")).json()["workers"]}
        assert listed == {"wa": "orch-0", "wb": "orch-1"}
