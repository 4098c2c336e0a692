"""Hybrid mode: with the deployment down, a host's executions run on the host itself; once it is back,
new ones go to the cloud (over Kafka), and each execution says where it ran."""

from __future__ import annotations

import pytest

from dac_provision import Client
from dac_provision.host import Host, HybridExecutor, KafkaExecutor, LocalExecutor
from tests.harness import restart_orchestrator, stop_process, wait_workers

pytestmark = pytest.mark.integration


async def run(host: Host, prompt: str) -> tuple[str, str, str]:
    execution = await host.execute("hybrid", prompt)
    text = "".join([item.text async for item in execution if item.kind == "stdout"])
    return execution.mode, (await execution.wait()).status, text


async def test_local_while_the_deployment_is_down_cloud_once_it_is_back(system, tmp_path):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    prefix = orch.topics.exec.removesuffix("persona.exec.v1")
    async with (
        Client(orch.url, orch.api_key) as client,
        KafkaExecutor({"bootstrap_servers": orch.bootstrap}, topic_prefix=prefix, api=client) as kafka,
        LocalExecutor("stand-in", work_dir=tmp_path) as local,
    ):
        host = Host(HybridExecutor(cloud=kafka, local=local, recheck_s=0))
        mode, status, text = await run(host, "plain lines:1 first")
        assert (mode, status) == ("cloud", "completed") and "line 1" in text
        [latest] = (await client.executions(limit=1))["executions"]
        assert latest["metadata"] == {"dac.mode": "cloud"}  # the choice, on the record

        stop_process(orch.proc)
        mode, status, text = await run(host, "plain lines:2 second")
        assert (mode, status) == ("local", "completed") and "line 2" in text

        restart_orchestrator(orch)
        await wait_workers(orch, 1)
        mode, status, text = await run(host, "plain lines:3 third")
        assert (mode, status) == ("cloud", "completed") and "line 3" in text
