"""Several orchestrators on Fly sharing a PostgreSQL store: one machine per replica across the spec's
regions, no volume, the database URL a Fly secret and nowhere in a machine's config; executions run
through Fly's proxy whichever machine each worker and request reaches; destroy leaves nothing."""

from __future__ import annotations

import json

import pytest

from dac_provision import deploy_async, destroy_async, load_spec

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_two_orchestrators_across_regions_on_a_shared_store(cloud, cloud_spec, store, postgres_url, monkeypatch):
    monkeypatch.setenv("DAC_TEST_STORE_URL", postgres_url)
    data = cloud_spec(
        workers=2, orchestrator={"replicas": 2}, store={"backend": "postgres", "url-env": "DAC_TEST_STORE_URL"}
    )
    data["fly"]["regions"] = ["ams", "fra"]
    spec = load_spec(data)
    events = []
    deployment = await deploy_async(spec, on_progress=events.append, store=store)
    created = {e.name for e in events if e.state == "created"}
    assert {"orchestrator", "orchestrator-2"} <= created and "fly-volume" not in created
    machines = [m for m in cloud.fly.machines.values() if m["config"]["metadata"].get("dac_role") == "orchestrator"]
    assert sorted(m["region"] for m in machines) == ["ams", "fra"]
    assert sorted(m["config"]["metadata"]["dac_orchestrator"] for m in machines) == ["orchestrator", "orchestrator-2"]
    password = postgres_url.split(":")[2].split("@")[0]
    for machine in machines:
        assert not machine["config"]["mounts"] and "DAC_DB_PATH" not in machine["config"]["env"]
        assert password not in json.dumps(machine["config"])  # a Fly secret, never the config
    async with deployment.client() as client:
        runs = [await client.execute("reviewer", f"lines:2 run {i}") for i in range(6)]
        results = [await run.wait() for run in runs]
        listed = await client.workers()
    assert [r.status for r in results] == ["completed"] * 6
    assert len(listed) == 2  # every worker, whichever orchestrator holds it
    assert await destroy_async(spec.name, store=store)
    assert cloud.resources() == 0 and cloud.violations() == [] and cloud.boot_errors == []
