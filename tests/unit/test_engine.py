"""The engine's bookkeeping, driven through a provider that keeps its "resources" in a dict.

The local provider is exercised for real in tests/e2e; here a provider that can be told to fail at
any step shows what the engine promises: a failure names the step, everything created before it is
recorded, a re-run creates only what is missing, and destroy removes everything in reverse order.
"""

from __future__ import annotations

import asyncio

import pytest

from dac_provision import engine
from dac_provision.engine import DeployError, deploy_async, destroy_async
from dac_provision.plan import Desired
from dac_provision.providers.base import Context, Health, ProviderError, Resource
from dac_provision.spec import load_spec
from dac_provision.state import StateStore


class DictProvider:
    def __init__(self) -> None:
        self.live: dict[str, Resource] = {}
        self.fail_on: str | None = None
        self.log: list[str] = []

    def preflight(self, ctx: Context) -> list[str]:
        return []

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        await asyncio.sleep(0)
        if desired.name == self.fail_on:
            raise ProviderError(f"{desired.name}: refused", None)
        self.log.append(f"create {desired.name}")
        resource = Resource(desired.kind, desired.name, f"id-{desired.name}-{len(self.log)}")
        self.live[desired.name] = resource
        return resource

    async def query(self, ctx: Context, resource: Resource) -> Health:
        return Health(self.live.get(resource.name) == resource)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        self.log.append(f"delete {resource.name}{' (drain)' if drain else ''}")
        self.live.pop(resource.name, None)

    def ready_timeout(self, ctx: Context) -> float:
        return 5.0

    async def wait_ready(self, ctx: Context, seconds: float) -> None:
        return None

    def endpoint(self, ctx: Context) -> str | None:
        return "http://127.0.0.1:1" if "orchestrator" in self.live else None

    def endpoints(self, ctx: Context) -> list[str]:
        return [f"http://127.0.0.1:{i}" for i, name in enumerate(sorted(self.live), 1) if "orchestrator" in name]


@pytest.fixture
def provider(monkeypatch):
    fake = DictProvider()
    monkeypatch.setattr(engine, "provider_for", lambda name: fake)
    return fake


@pytest.fixture
def store(tmp_path):
    return StateStore(tmp_path / "state")


async def test_failure_names_the_step_keeps_what_exists_and_a_rerun_resumes(provider, store):
    spec = load_spec(name="d", workers=2, agent_command="stand-in")
    provider.fail_on = "orchestrator"
    events = []
    with pytest.raises(DeployError, match="orchestrator: refused"):
        await deploy_async(spec, on_progress=events.append, store=store)
    assert [e.name for e in events if e.state == "failed"] == ["orchestrator"]
    assert {r.name for r in store.resources("d")} == {"broker", "topics"}
    assert store.deployment("d")["status"] == "failed"

    provider.fail_on = None
    provider.log.clear()
    await deploy_async(spec, store=store)
    assert provider.log == ["create orchestrator", "create worker-1", "create worker-2"]
    assert store.deployment("d")["status"] == "running"


async def test_a_replaced_upstream_replaces_what_follows_it(provider, store):
    spec = load_spec(name="d", workers=1, agent_command="stand-in")
    await deploy_async(spec, store=store)
    del provider.live["broker"]  # the broker "died"
    provider.log.clear()
    await deploy_async(spec, store=store)
    assert provider.log == [
        "delete broker",
        "create broker",
        "delete topics",
        "create topics",
        "delete orchestrator",
        "create orchestrator",
    ]  # the worker follows nothing: it reconnects on its own


async def test_orchestrators_are_replaced_one_at_a_time(provider, store):
    spec = load_spec(
        name="d", workers=2, agent_command="stand-in", orchestrator={"replicas": 3}, store={"backend": "postgres"}
    )
    deployment = await deploy_async(spec, store=store)
    assert len(deployment.urls) == 3  # a client gets every orchestrator
    for name in ("orchestrator", "orchestrator-2", "orchestrator-3"):
        del provider.live[name]  # each runs an older runtime, say
    provider.log.clear()
    await deploy_async(spec, store=store)
    # each is gone and back before the next goes: the others hold its workers and clients meanwhile
    assert [entry.split()[0] for entry in provider.log] == ["delete", "create"] * 3, provider.log
    assert [entry.split()[1] for entry in provider.log[::2]] == [entry.split()[1] for entry in provider.log[1::2]]


async def test_scaling_down_drains_the_surplus_and_destroy_goes_in_reverse(provider, store):
    await deploy_async(load_spec(name="d", workers=3, agent_command="stand-in"), store=store)
    provider.log.clear()
    await deploy_async(load_spec(name="d", workers=1, agent_command="stand-in"), store=store)
    assert sorted(provider.log) == ["delete worker-2 (drain)", "delete worker-3 (drain)"]
    provider.log.clear()
    assert await destroy_async("d", store=store)
    assert provider.log == ["delete worker-1", "delete orchestrator", "delete topics", "delete broker"]
    assert store.deployment("d") is None and store.resources("d") == []


async def test_a_deployment_cannot_change_provider_in_place(provider, store):
    await deploy_async(load_spec(name="d", workers=0, agent_command="stand-in"), store=store)
    spec = load_spec(name="d", provider="cloud", kafka={"bootstrap": "k:9092"})
    with pytest.raises(DeployError, match="already exists with provider 'local'"):
        await deploy_async(spec, store=store)


async def test_a_second_deploy_of_the_same_deployment_is_refused_while_one_runs(provider, store):
    spec = load_spec(name="d", workers=0, agent_command="stand-in")
    with store.lock("d"), pytest.raises(Exception, match="is busy"):
        await deploy_async(spec, store=store)
