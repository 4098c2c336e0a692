"""The orchestrator on (emulated) Fly Machines: app, IPs, volume, secrets and a machine that runs the
real orchestrator from the wheel in its files, reached through Fly's (emulated) TLS edge."""

from __future__ import annotations

import httpx
import pytest

from dac_provision.plan import Desired
from dac_provision.providers import kafka
from dac_provision.providers.base import Context
from dac_provision.providers.fly import FlyError, FlyProvider
from dac_provision.providers.fly_api import FlyAPI
from dac_provision.runtime_env import Secrets
from dac_provision.spec import load_spec
from dac_runtime.crypto import new_token
from tests.emulators.fly import Fault

pytestmark = pytest.mark.integration


def _context(fly, broker, tmp_path, name: str, **fly_options) -> Context:
    app = f"dac-{name}-test"
    options = {"app": app, "url": fly.edge_url(app)} | fly_options
    spec = load_spec(name=name, provider="cloud", workers=0, kafka={"bootstrap": broker.bootstrap}, fly=options)
    secrets = Secrets(master_key="ab" * 32, owner_api_key=new_token("dac_"), worker_token=new_token("dacr_"))
    return Context(spec, secrets, tmp_path)


async def _create_all(provider: FlyProvider, ctx: Context) -> None:
    for kind in FlyProvider.kinds:
        ctx.resources[kind] = await provider.create(ctx, Desired(kind, kind))


async def test_orchestrator_runs_on_fly_from_its_machine_config(fly, broker, tmp_path):
    ctx = _context(fly, broker, tmp_path, "f1")
    await kafka.ensure_topics(ctx.spec.kafka)
    provider = FlyProvider()
    await _create_all(provider, ctx)
    app = ctx.resources["fly-app"].id
    url = provider.endpoint(ctx)
    headers = {"Authorization": f"Bearer {ctx.secrets.owner_api_key}"}
    async with httpx.AsyncClient(base_url=url, verify=fly.tls.client_context(), headers=headers) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/api/workers")).json()["workers"] == []
    guest = fly.guest(app)
    assert "running dac_runtime.orchestrator from" in guest.console()  # from the shipped wheel, checksum checked
    config = fly.machines[ctx.resources["orchestrator"].id]["config"]
    assert ctx.secrets.master_key not in str(config) and ctx.secrets.owner_api_key not in str(config)
    assert set(fly.apps[app]["secrets"]) == {"DAC_MASTER_KEY", "DAC_OWNER_API_KEY"}  # no reusable worker token
    assert config["services"][0]["autostop"] == "off" and config["restart"]["policy"] == "always"
    assert {ip["shared"] for ip in fly.apps[app]["ips"]} == {True, False}
    assert [(await provider.query(ctx, r)).ok for r in list(ctx.resources.values())] == [True, True, True]

    # Adopting: a second create finds every piece and changes nothing.
    again = [await provider.create(ctx, Desired(kind, kind)) for kind in FlyProvider.kinds]
    assert [r.created for r in again] == [False, False, False] and fly.count() == 3

    for kind in reversed(FlyProvider.kinds):
        await provider.delete(ctx, ctx.resources[kind])
        await provider.delete(ctx, ctx.resources[kind])  # idempotent: already gone is fine
    assert fly.count() == 0
    assert fly.checker.violations == []


async def test_state_survives_a_machine_restart_and_a_config_change_updates_in_place(fly, broker, tmp_path):
    ctx = _context(fly, broker, tmp_path, "f2")
    await kafka.ensure_topics(ctx.spec.kafka)
    provider = FlyProvider()
    await _create_all(provider, ctx)
    headers = {"Authorization": f"Bearer {ctx.secrets.owner_api_key}"}
    async with httpx.AsyncClient(
        base_url=provider.endpoint(ctx), verify=fly.tls.client_context(), headers=headers
    ) as c:
        created = await c.post("/api/worker-tokens", json={"uses": 1})
        assert created.status_code == 201
        before = (await c.put("/api/credentials/GITHUB_TOKEN", json={"value": "ghp_kept"})).status_code
        assert before == 201
        fly.guest(ctx.resources["fly-app"].id).kill()  # restart policy always: Fly starts it again
        machine_id = ctx.resources["orchestrator"].id
        # A changed spec (more memory) is an update of the same machine, not a new one; the volume stays.
        ctx.spec.fly.memory_mb = 1024
        health = await provider.query(ctx, ctx.resources["orchestrator"])
        assert not health.ok and health.update
        updated = await provider.create(ctx, Desired("orchestrator", "orchestrator"))
        assert updated.id == machine_id and fly.machines[machine_id]["config"]["guest"]["memory_mb"] == 1024
        names = [item["name"] for item in (await c.get("/api/credentials")).json()["credentials"]]
        assert names == ["GITHUB_TOKEN"]
    assert fly.checker.violations == []


async def test_fly_errors_are_clear_and_429s_are_waited_out(fly, broker, tmp_path):
    ctx = _context(fly, broker, tmp_path, "f3")
    provider = FlyProvider()
    fly.faults.append(Fault("POST", "/v1/apps", 429, times=3, retry_after=0.05))
    fly.faults.append(Fault("GET", r"/v1/apps/[^/]+/ip_assignments", 503, times=2))
    app = await provider.create(ctx, Desired("fly-app", "fly-app"))
    assert app.created and fly.calls.count(("POST", "/v1/apps")) == 4
    fly.foreign.add("dac-taken")
    taken = _context(fly, broker, tmp_path, "f3", app="dac-taken")
    with pytest.raises(FlyError, match="taken by someone else"):
        await provider.create(taken, Desired("fly-app", "fly-app"))
    fly.faults.append(Fault("POST", "/v1/apps", 500, times=50))
    with pytest.raises(FlyError, match=r"POST /v1/apps answered 500: injected 500"):
        await provider.create(_context(fly, broker, tmp_path, "f4"), Desired("fly-app", "fly-app"))
    assert "dac-f4-test" not in fly.apps
    assert fly.checker.violations == []


async def test_a_read_that_gets_no_answer_is_retried_and_a_create_is_not(fly):
    fly.faults.append(Fault("GET", "/v1/apps/dac-slow", 0, hang=3))
    fly.faults.append(Fault("POST", r"/v1/apps/dac-slow/volumes", 0, hang=3))
    fly.apps["dac-slow"] = {"id": "1", "name": "dac-slow", "org": "personal", "ips": [], "secrets": {}}
    async with FlyAPI("fo1_emulated", fly.url, timeout=1) as api:
        assert (await api.get_app("dac-slow"))["name"] == "dac-slow"  # the hung call timed out; the retry answered
        with pytest.raises(FlyError, match=r"POST /v1/apps/dac-slow/volumes: ReadTimeout \(no answer\)"):
            await api.create_volume("dac-slow", {"name": "dac_state", "size_gb": 1})
    assert fly.calls.count(("GET", "/v1/apps/dac-slow")) == 2
    assert fly.calls.count(("POST", "/v1/apps/dac-slow/volumes")) == 1  # in doubt: never repeated blindly
