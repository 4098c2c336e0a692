"""Alarms, capacity, the scaling lease and ``/metrics`` are the deployment's, whichever orchestrator
answers: one that no worker dialled does not page "no worker" while its peer's workers run, a scaling
controller asking it sees every worker, and two controllers asking two orchestrators do not both act.
"""

from __future__ import annotations

import pytest

from tests.harness import submit, until, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.ha]


def gauge(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split()[-1])
    return None


async def test_an_orchestrator_without_workers_answers_for_the_whole_deployment(cluster):
    c = cluster(2)
    with_workers, without = c.orchs
    await c.workers_at(with_workers, 2)
    async with without.client() as api, with_workers.client() as there:

        async def sees_both_workers() -> bool:
            return (await api.get("/api/capacity")).json()["workers"].get("idle") == 2

        await until(sees_both_workers, timeout=15, what="the peer's workers in the capacity signals")
        capacity = (await api.get("/api/capacity")).json()
        assert capacity["orchestrators"] == 2 and set(capacity["idleSince"]) == {"w0", "w1"}
        health = (await api.get("/healthz")).json()
        assert health["workers"] == {} or not any(health["workers"].values())  # none of its own
        assert health["deployment"] == {"orchestrators": 2, "workers": capacity["workers"]}
        assert "no_worker" not in {a["code"] for a in health.get("alarms", [])}, health
        metrics = (await api.get("/metrics")).text
        assert gauge(metrics, 'dac_deployment_workers{state="idle"}') == 2.0
        assert gauge(metrics, "dac_deployment_orchestrators") == 2.0
        assert not gauge(metrics, 'dac_workers{state="idle"}')  # its own series: what Prometheus sums

        # The scaling lease is one for the deployment: held through one, refused through the other.
        taken = await there.put("/api/capacity/lease", json={"holder": "first", "ttlSeconds": 30})
        assert taken.status_code == 200, taken.text
        refused = await api.put("/api/capacity/lease", json={"holder": "second", "ttlSeconds": 30})
        assert refused.status_code == 409 and "first" in refused.json()["message"], refused.text
        assert (await api.get("/api/capacity")).json()["lease"]["holder"] == "first"
        assert (await api.request("DELETE", "/api/capacity/lease", json={"holder": "second"})).status_code == 409
        assert (await api.request("DELETE", "/api/capacity/lease", json={"holder": "first"})).status_code == 204
        assert (await api.put("/api/capacity/lease", json={"holder": "second"})).status_code == 200
        assert (await there.get("/api/capacity")).json()["lease"]["holder"] == "second"

        # Ends anywhere count towards the failure rate everywhere: ten failures, all run by the
        # first orchestrator's workers, raise the alarm on the second too.
        failing = [await submit(there, "exit:3", persona=f"f{i}") for i in range(10)]
        for execution_id in failing:
            assert (await wait_terminal(there, execution_id))["status"] == "failed"

        async def failure_rate_alarm() -> bool:
            alarms = (await api.get("/healthz")).json().get("alarms", [])
            return "failure_rate" in {a["code"] for a in alarms}

        await until(failure_rate_alarm, timeout=15, what="the failure-rate alarm on the orchestrator that ran none")
