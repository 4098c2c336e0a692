"""The library as a host application uses it: deploy from code, Client streams/cancels/waits, destroy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from dac_provision import Client, ClientError, StateStore, deploy_async, destroy_async, load_spec, status_async
from dac_provision.providers import processes
from tests.harness import ROOT

pytestmark = pytest.mark.integration


async def test_client_streams_cancels_and_waits(tmp_path):
    store = StateStore(tmp_path / "state")
    spec = load_spec(name="lib", workers=2, agent_command="stand-in")
    events = []
    deployment = await deploy_async(spec, on_progress=events.append, store=store)
    try:
        assert [e.state for e in events if e.name == "ready"] == ["start", "done"]
        assert all(e.total == 6 for e in events)
        async with deployment.client() as client:
            quick = await client.execute("reviewer", "lines:4 event:manual_review", metadata={"pr": "42"})
            slow = await client.execute("planner", "sleep:60")
            items = [item async for item in quick]
            text = "".join(i.text for i in items if i.kind == "stdout")
            assert text.count('"text": "line ') == 4
            seqs = [i.seq for i in items if i.seq is not None]
            assert seqs == sorted(set(seqs))  # each chunk once, in order
            assert [i.event_type for i in items if i.kind == "event"] == ["manual_review"]
            assert items[-1].kind == "lifecycle" and items[-1].status == "completed"
            result = await quick.wait()
            assert (result.status, result.exit_code) == ("completed", 0) and result.usage["outputTokens"] == 7
            assert (await client.get(quick.id))["metadata"] == {"pr": "42"}

            while (await client.get(slow.id))["status"] != "running":
                await asyncio.sleep(0.05)
            await slow.cancel()
            assert (await slow.wait()).status == "cancelled"
            with pytest.raises(ClientError) as refused:
                await slow.cancel()
            assert refused.value.status == 409 and refused.value.code == "already_finished"
            with pytest.raises(ClientError, match="no execution 'nope'"):
                await client.get("nope")
        report = await status_async("lib", store)
        assert report.state == "running" and report.executions == {"completed": 1, "cancelled": 1}
    finally:
        assert await destroy_async("lib", store=store)
    assert not await destroy_async("lib", store=store)  # idempotent


async def test_client_reports_an_unreachable_orchestrator_clearly():
    async with Client(f"http://127.0.0.1:{processes.free_port()}", "dac_x") as client:
        with pytest.raises(ClientError, match=r"cannot reach the orchestrator at http://127\.0\.0\.1:"):
            await client.execute("p", "hello")


async def test_client_refuses_names_that_would_change_the_url_before_sending_anything():
    # No server listens there: a request sent would fail differently ("cannot reach").
    async with Client(f"http://127.0.0.1:{processes.free_port()}", "dac_x") as client:
        for call in (client.set_credential("../token", "v"), client.delete_credential("A/B")):
            with pytest.raises(ClientError, match="is not a credential name"):
                await call
        with pytest.raises(ClientError, match="is not a valid member id"):
            await client.remove_member("key_1/../../token")


def test_host_app_example_runs_three_executions_concurrently_and_tears_down(tmp_path):
    env = dict(os.environ, DAC_STATE_DIR=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "host_app.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for persona in ("reviewer", "planner", "writer"):
        assert f"{persona}: completed (exit 0" in result.stdout
    assert "[writer] event user_message" in result.stdout and "destroyed host-app" in result.stdout
    assert StateStore(tmp_path / "state").deployments() == []


def test_host_app_example_runs_the_same_personas_locally_with_no_deployment(tmp_path):
    env = dict(os.environ, DAC_STATE_DIR=str(tmp_path / "state"))
    example = [sys.executable, str(ROOT / "examples" / "host_app.py"), "--local"]
    result = subprocess.run(example, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for persona in ("reviewer", "planner", "writer"):
        assert f"{persona}: completed (exit 0" in result.stdout
    assert "[writer] event user_message" in result.stdout and StateStore(tmp_path / "state").deployments() == []


def test_host_app_example_runs_through_kafka_in_hybrid_mode(tmp_path):
    """The toggle: the same app on the deployment through Kafka, chosen per run by HybridExecutor."""
    env = dict(os.environ, DAC_STATE_DIR=str(tmp_path / "state"))
    example = [sys.executable, str(ROOT / "examples" / "host_app.py"), "--hybrid"]
    result = subprocess.run(example, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for persona in ("reviewer", "planner", "writer"):
        assert f"{persona}: completed (exit 0" in result.stdout
    assert "[writer] asks the user" in result.stdout and "destroyed host-app" in result.stdout
