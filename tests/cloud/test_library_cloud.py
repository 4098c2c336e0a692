"""``deploy_async`` on the cloud target: a real execution flows through workers booted from user data."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import aiohttp
import pytest

from dac_provision import burst_async, deploy_async, destroy_async, load_spec, scale_async, status_async
from dac_provision.engine import secrets_for
from dac_provision.providers.cloud import CloudProvider

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


async def test_the_user_data_sent_is_valid_cloud_config_with_only_a_limited_token(cloud, cloud_spec, store, tmp_path):
    if shutil.which("cloud-init") is None:
        pytest.fail("cloud-init is not installed: python3 tools/dev.py test installs it (apt-get install cloud-init)")
    spec = load_spec(cloud_spec(workers=12))
    await deploy_async(spec, store=store)
    secrets = secrets_for(store, spec.name)
    sent = [d["_user_data"] for d in cloud.do.droplets.values()]
    assert len(set(sent)) == 2  # one per batch of at most ten, each with its own registration token
    for index, text in enumerate(set(sent)):
        path = tmp_path / f"user-data-{index}.yaml"
        path.write_text(text)
        checked = subprocess.run(  # noqa: ASYNC221 - a one-off check, nothing else runs meanwhile
            ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True
        )
        assert checked.returncode == 0 and "Valid cloud-config" in checked.stdout, checked.stdout + checked.stderr
        assert len(text.encode()) < 64 * 1024
        for secret in (secrets.master_key, secrets.owner_api_key, secrets.worker_token):
            assert secret not in text
        tokens = re.findall(r"dacr_[A-Za-z0-9_-]+", text)
        assert len(set(tokens)) == 1 and tokens[0] != secrets.worker_token
    # Spent: both batches' machines have registered, so a further hello with either token is refused.
    url = spec.fly.url.replace("https://", "wss://") + "/ws/worker"
    token = re.findall(r"dacr_[A-Za-z0-9_-]+", sent[0])[0]
    async with aiohttp.ClientSession() as session:
        # ...and so is the deployment's reusable bootstrap token: the cloud orchestrator never got it.
        for refused_token in (token, secrets.worker_token):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                headers = {"Authorization": f"Bearer {refused_token}"}
                await session.ws_connect(url, headers=headers, ssl=cloud.tls.client_context())
            assert refused.value.status == 401
    assert await destroy_async(spec.name, store=store) and cloud.resources() == 0


async def test_scale_and_a_powered_off_droplet_is_powered_on_not_replaced(cloud, cloud_spec, store):
    spec = load_spec(cloud_spec(workers=1))
    deployment = await deploy_async(spec, store=store)
    await scale_async(spec.name, 3, store=store)
    assert len(cloud.do.droplets) == 3 and len(cloud.workers) == 3
    first = min(cloud.do.droplets)
    await CloudProvider().digitalocean.power(first, on=False)
    await asyncio.sleep(0.5)  # the unit stops
    assert cloud.do.droplets[first]["status"] == "off" and cloud.running() == 2
    report = await status_async(spec.name, store=store)
    assert report.state == "degraded" and any("droplet is off" in p for p in report.problems)
    before = sorted(cloud.do.droplets)
    await scale_async(spec.name, 3, store=store)  # the same count: a deploy that heals
    assert sorted(cloud.do.droplets) == before
    assert cloud.do.droplets[first]["status"] == "active" and cloud.running() == 3
    async with deployment.client() as client:
        assert len(await client.workers()) == 3
    await scale_async(spec.name, 0, store=store)
    assert cloud.do.droplets == {} and cloud.workers == {}
    assert await destroy_async(spec.name, store=store) and cloud.resources() == 0
    assert cloud.violations() == []


async def test_burst_workers_take_one_execution_each_and_are_destroyed(cloud, cloud_spec, store):
    spec = load_spec(cloud_spec(workers=0))
    deployment = await deploy_async(spec, store=store)
    ids = await burst_async(spec.name, 2, store=store)
    assert len(ids) == 2 and len(cloud.fly.machines) == 3
    async with deployment.client() as client:
        assert sorted(w["workerId"] for w in await client.workers()) == sorted(ids)
        executions = [await client.execute("p", f"lines:2 burst {i}") for i in range(2)]
        results = [await e.wait() for e in executions]
        assert [r.status for r in results] == ["completed", "completed"]
        assert {(await client.get(e.id))["workerId"] for e in executions} == set(ids)  # one job each
    for _ in range(100):  # each exits after its job; auto_destroy removes its machine
        if len(cloud.fly.machines) == 1:
            break
        await asyncio.sleep(0.1)
    assert [m["config"]["metadata"]["dac_role"] for m in cloud.fly.machines.values()] == ["orchestrator"]
    assert cloud.violations() == []
    assert await destroy_async(spec.name, store=store) and cloud.resources() == 0
