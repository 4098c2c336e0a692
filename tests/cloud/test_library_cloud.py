"""``deploy_async`` on the cloud target: a real execution flows through workers booted from user data."""

from __future__ import annotations

import pytest

from dac_provision import deploy_async, destroy_async, load_spec

pytestmark = pytest.mark.integration


async def test_deploy_execute_destroy_through_the_library(cloud, cloud_spec, store):
    spec = load_spec(cloud_spec(workers=2))
    events = []
    deployment = await deploy_async(spec, on_progress=events.append, store=store)
    assert deployment.url == spec.fly.url
    async with deployment.client() as client:
        workers = sorted(w["workerId"] for w in await client.workers())
        assert workers == [f"dac-{spec.name}-worker-1", f"dac-{spec.name}-worker-2"]  # hostnames from DO
        execution = await client.execute("reviewer", "lines:3 hello from a droplet")
        text = "".join([item.text or "" async for item in execution])
        result = await execution.wait()
    assert result.status == "completed" and "hello from a droplet" in text
    created = {e.name for e in events if e.state == "created"}
    assert created == {
        "topics",
        "fly-app",
        "fly-volume",
        "orchestrator",
        "do-ssh-key",
        "do-firewall",
        "worker-1",
        "worker-2",
    }
    assert await destroy_async(spec.name, store=store)
    assert cloud.resources() == 0 and cloud.workers == {}
    assert cloud.violations() == [] and cloud.boot_errors == []
