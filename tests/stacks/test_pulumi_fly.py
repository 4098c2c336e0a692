"""The Fly dynamic provider's create, update and delete against the Fly emulator, as Pulumi's provider
process calls them: the orchestrator really runs, an update is in place, delete leaves nothing."""

from __future__ import annotations

import pickle

import httpx
import pytest

from dac_provision.providers import kafka
from dac_provision.pulumi_fly import FlyOrchestratorProvider
from dac_provision.spec import load_spec
from dac_runtime.crypto import new_token

pytestmark = pytest.mark.integration


def test_create_update_delete_through_the_dynamic_provider(fly, broker):
    import asyncio

    app = "dac-pl-stack"
    spec = load_spec(
        name="pl",
        provider="cloud",
        workers=2,
        kafka={"bootstrap": broker.bootstrap},
        fly={"app": app, "url": fly.edge_url(app)},
    )
    asyncio.run(kafka.ensure_topics(spec.kafka))
    props = {
        "spec": spec.to_dict(),
        "workers": 2,
        "master_key": "ef" * 32,
        "owner_api_key": new_token("dac_"),
        "kafka_password": "",
    }
    provider = FlyOrchestratorProvider()
    assert "fo1_emulated" not in str(pickle.dumps(provider))  # nothing secret is pickled into state

    created = provider.create(props)
    outs = created.outs
    assert outs["app"] == app and outs["url"] == spec.fly.url and outs["worker_token"].startswith("dacr_")
    headers = {"Authorization": f"Bearer {props['owner_api_key']}"}
    with httpx.Client(base_url=outs["url"], verify=fly.tls.client_context(), headers=headers) as client:
        assert client.get("/api/workers").status_code == 200

    changed = dict(props, spec=load_spec(spec.to_dict(), fly={**spec.to_dict()["fly"], "memory-mb": 1024}).to_dict())
    diff = provider.diff(created.id, outs, changed)
    assert diff.changes and not diff.replaces
    updated = provider.update(created.id, outs, changed).outs
    assert updated["machine_id"] == outs["machine_id"] and updated["volume_id"] == outs["volume_id"]
    assert fly.machines[outs["machine_id"]]["config"]["guest"]["memory_mb"] == 1024

    provider.delete(created.id, updated)
    assert fly.count() == 0 and fly.checker.violations == []
