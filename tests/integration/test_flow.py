"""Executions through the real system: broker, orchestrator process, worker processes, stand-in agent."""

from __future__ import annotations

import asyncio
import collections
import json

import pytest
from aiokafka import AIOKafkaProducer

from tests.harness import read_topic, submit, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


async def test_fifty_executions_over_four_workers(system):
    orch, _ = system(workers=4)
    await wait_workers(orch, 4)
    async with orch.client() as client:
        ids = await asyncio.gather(*(submit(client, f"job {i} lines:{20 + i}", "persona-1") for i in range(50)))
        finals = await asyncio.gather(*(wait_terminal(client, e, timeout=120) for e in ids))
    assert [f["status"] for f in finals] == ["completed"] * 50, orch.log()[-3000:]
    assert len({f["workerId"] for f in finals}) == 4  # the pool was used, not one worker

    done = lambda recs: sum(1 for r in recs if r["status"] == "completed") >= 50  # noqa: E731
    lifecycle = await read_topic(orch.bootstrap, orch.topics.lifecycle, done)
    by_exec = collections.defaultdict(list)
    for rec in lifecycle:
        by_exec[rec["executionId"]].append(rec["status"])
    for execution_id in ids:
        assert by_exec[execution_id] == ["queued", "dispatched", "running", "completed"], execution_id

    def all_results_in(recs):  # a chunk boundary may split a line: look at each execution's joined text
        joined = collections.defaultdict(str)
        for r in recs:
            joined[r["executionId"]] += r["chunk"]
        return sum('"type": "result"' in text for text in joined.values()) >= 50

    output = await read_topic(orch.bootstrap, orch.topics.output, all_results_in)
    events = await read_topic(orch.bootstrap, orch.topics.events, lambda recs: len(recs) >= 50)
    chunks = collections.defaultdict(list)
    for rec in output:
        chunks[rec["executionId"]].append(rec)
    event_seqs = collections.defaultdict(list)
    for rec in events:
        event_seqs[rec["executionId"]].append(rec["seq"])
        assert rec["eventType"] == "persona_action" and rec["personaId"] == "persona-1"
    for i, execution_id in enumerate(ids):
        recs = chunks[execution_id]
        seqs = [r["seq"] for r in recs]
        assert seqs == sorted(seqs), "output out of order within its partition"
        # no chunk lost: output and event seqs together are exactly 1..N
        assert sorted(seqs + event_seqs[execution_id]) == list(range(1, len(seqs) + len(event_seqs[execution_id]) + 1))
        text = "".join(r["chunk"] for r in recs)
        positions = [text.index(f'"line {n}"') for n in range(1, 21 + i)]
        assert positions == sorted(positions)
        assert f"job {i} " in text


async def test_limits_timeout_inactivity_output_cap_and_failure(system):
    orch, _ = system(workers=4, DAC_INACTIVITY_TIMEOUT_MS="2500")
    await wait_workers(orch, 4)
    async with orch.client() as client:
        timeout_id = await submit(client, "sleep:30", timeoutMs=1500)
        hang_id = await submit(client, "hang")
        flood_id = await submit(client, "plain flood:5000000", maxOutputBytes=200_000)
        fail_id = await submit(client, "fail stderr:broken-thing")
        results = {
            k: await wait_terminal(client, v)
            for k, v in {"timeout": timeout_id, "hang": hang_id, "flood": flood_id, "fail": fail_id}.items()
        }
    assert results["timeout"]["status"] == "timed_out" and results["timeout"]["reason"] == "timeout"
    assert results["hang"]["status"] == "timed_out" and results["hang"]["reason"] == "inactivity"
    assert results["flood"]["status"] == "failed" and results["flood"]["reason"] == "output_limit"
    assert results["fail"]["status"] == "failed" and results["fail"]["exitCode"] == 1
    output = await read_topic(orch.bootstrap, orch.topics.output, lambda recs: False, timeout=2)
    flood_bytes = sum(len(r["chunk"].encode()) for r in output if r["executionId"] == flood_id)
    assert 0 < flood_bytes <= 200_000
    assert any("broken-thing" in r["chunk"] and r["stream"] == "stderr" for r in output if r["executionId"] == fail_id)
    dead = await read_topic(orch.bootstrap, orch.topics.dead_letter, lambda recs: len(recs) >= 1, timeout=5)
    assert [d["request"]["executionId"] for d in dead] == [fail_id]
    # the workers are all free again afterwards
    await wait_workers(orch, 4)


async def test_cancel_a_running_execution(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "sleep:60")
        for _ in range(200):
            if (await client.get(f"/api/executions/{execution_id}")).json()["status"] == "running":
                break
            await asyncio.sleep(0.05)
        r = await client.post(f"/api/executions/{execution_id}/cancel")
        assert r.status_code == 202
        final = await wait_terminal(client, execution_id, timeout=15)
        assert final["status"] == "cancelled"
        again = await client.post(f"/api/executions/{execution_id}/cancel")
        assert again.status_code == 409 and again.json()["error"] == "already_finished"


async def test_retry_then_dead_letter(system):
    orch, _ = system(workers=1, DAC_RETRY_BACKOFF_MS="100")
    await wait_workers(orch, 1)
    async with orch.client() as client:
        execution_id = await submit(client, "fail", maxAttempts=3)
        final = await wait_terminal(client, execution_id, timeout=30)
    assert final["status"] == "failed" and final["attempt"] == 3
    lifecycle = await read_topic(
        orch.bootstrap, orch.topics.lifecycle, lambda recs: any(r["status"] == "failed" for r in recs)
    )
    statuses = [(r["status"], r["attempt"]) for r in lifecycle if r["executionId"] == execution_id]
    assert statuses == [
        ("queued", 1),
        ("dispatched", 1),
        ("running", 1),
        ("queued", 2),
        ("dispatched", 2),
        ("running", 2),
        ("queued", 3),
        ("dispatched", 3),
        ("running", 3),
        ("failed", 3),
    ]
    dead = await read_topic(orch.bootstrap, orch.topics.dead_letter, lambda recs: len(recs) >= 1)
    assert dead[0]["attempts"] == 3 and dead[0]["request"]["executionId"] == execution_id


async def test_requests_produced_straight_to_kafka_and_garbage_dead_lettered(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    producer = AIOKafkaProducer(bootstrap_servers=orch.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(orch.topics.exec, b"{not json", key=b"p")
        await producer.send_and_wait(orch.topics.exec, json.dumps({"executionId": "x1"}).encode(), key=b"p")
        good = {"executionId": "direct-1", "personaId": "p", "prompt": "lines:2"}
        await producer.send_and_wait(orch.topics.exec, json.dumps(good).encode(), key=b"p")
        await producer.send_and_wait(orch.topics.exec, json.dumps(good).encode(), key=b"p")  # duplicate
    finally:
        await producer.stop()
    async with orch.client() as client:
        final = await wait_terminal(client, "direct-1")
    assert final["status"] == "completed"
    dead = await read_topic(orch.bootstrap, orch.topics.dead_letter, lambda recs: len(recs) >= 2)
    by_raw = {d["raw"]: d["error"] for d in dead}
    assert by_raw["{not json"].startswith("malformed_json")
    assert (
        by_raw['{"executionId": "x1"}'].startswith("invalid_request") and "personaId" in by_raw['{"executionId": "x1"}']
    )
    lifecycle = await read_topic(
        orch.bootstrap, orch.topics.lifecycle, lambda recs: any(r["status"] == "completed" for r in recs)
    )
    assert [r["status"] for r in lifecycle if r["executionId"] == "direct-1"].count("completed") == 1


async def test_backpressure_waits_for_a_worker_instead_of_failing(system):
    orch, workers = system(workers=0)
    async with orch.client() as client:
        ids = [await submit(client, "lines:1") for _ in range(3)]
        await asyncio.sleep(2.5)
        statuses = [(await client.get(f"/api/executions/{e}")).json()["status"] for e in ids]
        assert statuses == ["queued"] * 3
        metrics = (await client.get("/metrics")).text
        assert "dac_kafka_consumer_lag 3.0" in metrics
        from tests.harness import start_worker

        workers.append(start_worker(orch, "late"))
        finals = [await wait_terminal(client, e) for e in ids]
        metrics = (await client.get("/metrics")).text
    assert [f["status"] for f in finals] == ["completed"] * 3
    # Each dispatch is timed from produce (broker included) and from intake's read (the orchestrator's
    # own part); the backlog waited in Kafka, not in intake, so the own part stayed under a second.
    assert "dac_dispatch_latency_seconds_count 3.0" in metrics
    assert 'dac_dispatch_handling_seconds_bucket{le="1.0"} 3.0' in metrics
