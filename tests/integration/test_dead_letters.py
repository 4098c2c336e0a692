"""Dead letters an operator acts on: listed with why and when, retried as a new execution that runs,
discarded one or many; and the alarms and backlog age that say when to look."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiokafka import AIOKafkaProducer

from tests.harness import checked, produce_request, start_worker, stop_process, submit, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]


async def test_dead_letters_are_listed_retried_and_discarded(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        # An unknown credential dead-letters at once; so does a record that never parses.
        doomed = await submit(owner, "lines:1 ok", credentials=["NOT_STORED_YET"])
        assert (await wait_terminal(owner, doomed))["status"] == "failed"
        producer = AIOKafkaProducer(bootstrap_servers=orch.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(orch.topics.exec, b"{not json", key=b"p")
        finally:
            await producer.stop()
        await produce_request(
            orch, {"executionId": "kafka-doomed", "personaId": "p", "prompt": "x", "credentials": ["NOPE"]}
        )
        path = "/api/dead-letters"
        await eventually(lambda: _count(owner, path, 3), what="three dead letters")
        listed = (await checked(owner, "GET", path, path)).json()
        assert listed["counts"] == {"open": 3, "retried": 0, "discarded": 0}
        by_exec = {d["executionId"]: d for d in listed["deadLetters"]}
        assert "unknown credential NOT_STORED_YET" in by_exec[doomed]["error"] and by_exec[doomed]["retryable"]
        raw = by_exec[None]
        assert raw["raw"] == "{not json" and not raw["retryable"] and "malformed_json" in raw["error"]

        # The credential arrives; retrying runs the request again as a new execution, linked both ways.
        assert (await owner.put("/api/credentials/NOT_STORED_YET", json={"value": "now-here"})).status_code == 201
        retried = await checked(owner, "POST", f"{path}/retry", f"{path}/retry", {"ids": [by_exec[doomed]["id"]]})
        new_id = retried.json()["deadLetters"][0]["executionId"]
        assert new_id != doomed
        done = await wait_terminal(owner, new_id)
        assert done["status"] == "completed" and done["retryOf"] == doomed and done["submittedBy"]["name"] == "owner"
        assert (await owner.get(f"/api/executions/{doomed}")).json()["status"] == "failed"  # its truth stays
        again = await owner.post(f"{path}/retry", json={"ids": [by_exec[doomed]["id"]]})
        assert again.status_code == 409 and "already retried" in again.json()["message"]
        cannot = await owner.post(f"{path}/retry", json={"ids": [raw["id"]]})
        assert cannot.status_code == 409 and cannot.json()["error"] == "not_retryable"

        # Discard is all or none: one unknown id and nothing changes.
        unknown = await owner.post(f"{path}/discard", json={"ids": [raw["id"], "dl_0000000000000000"]})
        assert unknown.status_code == 404
        gone = await checked(
            owner, "POST", f"{path}/discard", f"{path}/discard", {"ids": [raw["id"], by_exec["kafka-doomed"]["id"]]}
        )
        assert [d["state"] for d in gone.json()["deadLetters"]] == ["discarded", "discarded"]
        final = (await owner.get(path, params={"state": "discarded"})).json()
        assert {d["id"] for d in final["deadLetters"]} == {raw["id"], by_exec["kafka-doomed"]["id"]}
        assert final["counts"] == {"open": 0, "retried": 1, "discarded": 2}
        assert (await owner.post(f"{path}/discard", json={"ids": ["../x"]})).status_code == 400


async def eventually(check, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll an async condition until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} not met after {timeout}s")
        await asyncio.sleep(0.1)


async def _count(client, path: str, n: int) -> bool:
    return len((await client.get(path)).json()["deadLetters"]) >= n


async def test_the_oldest_waiting_request_is_measured_and_alarms_say_what_is_wrong(system):
    orch, _ = system(workers=0)
    async with orch.client() as owner:
        health = (await owner.get("/healthz")).json()
        assert [a["code"] for a in health["alarms"]] == ["no_worker"]
        assert health["warnings"] == ["no worker is connected: every execution waits"]
        producer = AIOKafkaProducer(bootstrap_servers=orch.bootstrap)
        await producer.start()
        try:  # produced two minutes ago, as far as its broker timestamp says (a host app's clock, say)
            body = b'{"executionId": "old-one", "personaId": "p", "prompt": "lines:1"}'
            await producer.send_and_wait(orch.topics.exec, body, key=b"p", timestamp_ms=int((time.time() - 120) * 1000))
        finally:
            await producer.stop()
        first = await submit(owner, "lines:1")

        async def aged() -> bool:
            text = (await owner.get("/metrics")).text
            age = float(re.search(r"^dac_oldest_waiting_request_age_seconds (\S+)", text, re.M).group(1))
            lag = float(re.search(r"^dac_kafka_consumer_lag (\S+)", text, re.M).group(1))
            return lag == 2 and age >= 120  # measured from when it was produced, not from when it was seen

        await eventually(aged, timeout=15, what="both requests waiting, the oldest for two minutes")
    orch_workers = [start_worker(orch, "late")]
    try:
        async with orch.client() as owner:
            assert (await wait_terminal(owner, first))["status"] == "completed"

            async def drained() -> bool:
                text = (await owner.get("/metrics")).text
                return re.search(r"^dac_oldest_waiting_request_age_seconds 0\.0$", text, re.M) is not None

            await eventually(drained, timeout=15, what="no waiting request, so no age")
            assert "alarms" not in (await owner.get("/healthz")).json()
    finally:
        for proc in orch_workers:
            stop_process(proc)
