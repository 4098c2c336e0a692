"""The broker killed with -9 while a run is in flight and requests are queued, then brought back.

The broker here keeps its log in memory, so the restarted one is empty (its topics are made again, as
the local provider's heal does): the queued requests survive only because the orchestrator stores them
and produces them again, and the records made during the outage only because it holds them.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from dac_runtime.records import Topics
from tests import harness
from tests.faults.observe import Recorded, judge
from tests.harness import Broker, create_topics, read_topic, start_orchestrator, start_worker, submit, wait_workers

pytestmark = pytest.mark.integration


async def _health(client) -> tuple[int, dict]:
    response = await client.get("/healthz")
    return response.status_code, response.json()


async def _until_health(client, predicate, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = await _health(client)
        if predicate(code, body):
            return body
        await asyncio.sleep(0.1)
    raise TimeoutError(f"health never matched: {code} {body}")


async def test_broker_killed_and_healed_loses_nothing_and_says_so_meanwhile(tmp_path):
    broker = Broker.start()
    topics = Topics.with_prefix("loss.")
    await create_topics(broker.bootstrap, topics)
    recorded = Recorded(tmp_path)
    orch = start_orchestrator(
        broker, tmp_path, topics, DAC_KAFKA_PROBE_MS="300", DAC_SUBMIT_TIMEOUT_MS="1500", DAC_LEASE_MS="30000"
    )
    procs = [orch.proc, start_worker(orch, "w0", recorded.command, **recorded.worker_env)]
    try:
        await wait_workers(orch, 1)
        async with orch.client() as client:
            expected = {await submit(client, f"sleep:2 lines:{n + 2}"): n + 2 for n in range(5)}
            await asyncio.sleep(0.5)  # the first is running, four wait in Kafka
            log_before = len(orch.log().splitlines())
            broker.proc.send_signal(signal.SIGKILL)
            broker.proc.wait()

            body = await _until_health(client, lambda code, b: code == 503 and "kafka" in b.get("down", {}))
            assert body["kafka"] is False and "broker not answering" in body["down"]["kafka"]
            started = time.monotonic()
            refused = await client.post("/api/execute", json={"personaId": "p", "prompt": "lines:1"})
            assert refused.status_code == 503 and time.monotonic() - started < 2
            assert refused.json()["error"] == "kafka_unavailable" and int(refused.headers["Retry-After"]) >= 1
            # the running one finishes during the outage: its output and lifecycle records are held
            body = await _until_health(client, lambda code, b: b["outbox"]["held"] >= 2)  # output chunk, completed
            await asyncio.sleep(3)  # an outage of several seconds
            outage_lines = orch.log().splitlines()[log_before:]

            broker = Broker.start(broker.port)  # back at the same address, empty
            await create_topics(broker.bootstrap, topics)
            await _until_health(client, lambda code, b: code == 200 and b["outbox"]["held"] == 0, timeout=30)
            verdict = await judge("kill -9 broker, 1 running + 4 queued, heal", orch, client, recorded, expected)
        assert (verdict.lost, verdict.ran_twice, verdict.untruthful, verdict.problems) == (0, 0, 0, [])
        assert verdict.completed == 5
        lifecycle = await read_topic(
            broker.bootstrap,
            topics.lifecycle,
            lambda recs: {r["executionId"] for r in recs if r["status"] == "completed"} >= set(expected),
        )
        finals = {r["executionId"] for r in lifecycle if r["status"] == "completed"}
        assert finals >= set(expected)  # including the one that finished while the broker was gone
        assert len(outage_lines) < 25, "\n".join(outage_lines)  # state changes, not a line per failure
        assert any("kafka unavailable" in line for line in outage_lines)
        assert "kafka available again" in orch.log()
    finally:
        for proc in procs:
            harness.stop_process(proc)
        broker.stop()
