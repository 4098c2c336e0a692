"""The host application's one interface, run the same way here and on a deployment: the same test
functions against ``LocalExecutor`` (the runtime's executor on this machine, no broker, no
orchestrator), ``KafkaExecutor`` (a deployment over Kafka) and ``Client`` (a deployment over HTTP):
output identical in content and order, events delivered, cancel and timeout ending the same way,
credentials redacted the same way, event handlers called for all three."""

from __future__ import annotations

import asyncio

import pytest

from dac_provision import Client
from dac_provision.client import Output
from dac_provision.host import Host, KafkaExecutor, LocalExecutor
from tests.harness import wait_workers

pytestmark = pytest.mark.integration
TOKEN = "ghp_" + "HostSideValue" * 3


@pytest.fixture(params=["local", "kafka", "http"])
async def executor(request, system, tmp_path):
    if request.param == "local":
        async with LocalExecutor("stand-in", credentials={"GITHUB_TOKEN": TOKEN}, work_dir=tmp_path) as local:
            yield local
        return
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with Client(orch.url, orch.api_key) as client:
        await client.set_credential("GITHUB_TOKEN", TOKEN)
        if request.param == "http":
            yield client
            return
        prefix = orch.topics.exec.removesuffix("persona.exec.v1")
        kafka = KafkaExecutor({"bootstrap_servers": orch.bootstrap}, topic_prefix=prefix, api=client)
        async with kafka:
            yield kafka


async def collect(execution) -> tuple[list[tuple[str, str]], str | None]:
    said, final = [], None
    async for item in execution:
        if item.kind in ("stdout", "stderr"):
            said.append((item.kind, item.text))
        elif item.kind == "event":
            said.append(("event", item.event_type))
        elif item.kind == "lifecycle":
            final = item.status
    return said, final


async def test_output_and_events_arrive_in_order(executor):
    execution = await executor.execute("host", "plain lines:3 event:manual_review")
    said, final = await collect(execution)
    text = "".join(t for kind, t in said if kind == "stdout")
    assert text.index("line 1") < text.index("line 2") < text.index("line 3")
    assert ("event", "manual_review") in said and final == "completed"
    result = await execution.wait()
    assert (result.status, result.exit_code) == ("completed", 0)


async def test_credentials_reach_the_agent_and_never_its_output(executor):
    execution = await executor.execute("host", "plain env:GITHUB_TOKEN", credentials=["GITHUB_TOKEN"])
    said, _ = await collect(execution)
    text = "".join(t for _, t in said)
    assert "GITHUB_TOKEN=[REDACTED]" in text and TOKEN not in text


async def test_cancel_and_timeout_end_the_same_way(executor):
    long = await executor.execute("host", "plain lines:1 sleep:30")
    async for item in long:
        if item.kind == "stdout" and "line 1" in item.text:
            break
    await long.cancel()
    assert (await asyncio.wait_for(long.wait(), 30)).status == "cancelled"
    slow = await executor.execute("host", "plain sleep:10", timeout_ms=1000)
    result = await asyncio.wait_for(slow.wait(), 30)
    assert result.status == "timed_out" and result.reason == "timeout"


async def test_handlers_hear_events_from_every_mode_and_a_reply_follows_up(executor):
    bus: list[dict] = []
    host = Host(executor, event_bus=bus.append)
    heard: list[tuple[str, dict]] = []
    host.on("manual_review", lambda execution, item: heard.append((execution.id, item.payload)))
    execution = await host.execute("host", "plain event:manual_review event:emit_event lines:1")
    assert (await execution.wait()).status == "completed"
    assert [h[0] for h in heard] == [execution.id] and heard[0][1]["source"] == "stand-in"
    assert [b["source"] for b in bus] == ["stand-in"]  # emit_event went to the host's own bus
    assert execution.mode == ("local" if isinstance(executor, LocalExecutor) else "cloud")
    question = Output("event", event_type="manual_review", payload={"message": "ship it?"})
    follow_up = await host.reply(execution, question, "yes, ship it")
    said, final = await collect(follow_up)
    text = "".join(t for kind, t in said if kind == "stdout")
    assert final == "completed" and "ship it?" in text and "[Answer: yes, ship it]" in text
