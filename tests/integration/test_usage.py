"""Who used what: each execution records its submitter and the credentials it was given (names), and
/api/usage sums executions, attempts, time, tokens and cost per member, persona and day, exactly."""

from __future__ import annotations

import pytest

from tests.harness import checked, produce_request, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]


async def test_usage_counts_each_execution_once_and_retries_as_attempts(system):
    orch, _ = system(workers=2, DAC_RETRY_BACKOFF_MS="0")
    await wait_workers(orch, 2)
    async with orch.client() as owner:
        assert (await owner.put("/api/credentials/GITHUB_TOKEN", json={"value": "ghp_usage"})).status_code == 201
        assert (await owner.put("/api/personas/alpha", json={"credentials": ["GITHUB_TOKEN"]})).status_code == 201
        dev = (await owner.post("/api/team", json={"name": "dana", "role": "contributor"})).json()
        as_dev = {"Authorization": f"Bearer {dev['apiKey']}"}

        async def run(headers: dict | None, persona: str, prompt: str, **extra: object) -> dict:
            body = {"personaId": persona, "prompt": prompt, **extra}
            response = await owner.post("/api/execute", json=body, headers=headers or {})
            assert response.status_code == 202, response.text
            return await wait_terminal(owner, response.json()["executionId"])

        ok = await run(as_dev, "alpha", "one two three")  # 3 words: the stand-in reports 3 input tokens
        failed = await run(as_dev, "alpha", "fail", maxAttempts=2)
        mine = await run(None, "beta", "one")
        await produce_request(orch, {"executionId": "direct-usage", "personaId": "beta", "prompt": "one two"})
        straight = await wait_terminal(owner, "direct-usage")

        assert ok["submittedBy"] == {"id": dev["id"], "name": "dana"} and ok["credentials"] == ["GITHUB_TOKEN"]
        assert failed["status"] == "failed" and failed["attempt"] == 2
        assert mine["submittedBy"]["name"] == "owner" and mine["credentials"] == []
        assert straight["submittedBy"] is None

        by_member = (await checked(owner, "GET", "/api/usage?groupBy=member", "/api/usage")).json()
        rows = {g["name"]: g for g in by_member["groups"]}
        assert set(rows) == {"dana", "owner", "(straight from Kafka)"}
        assert (rows["dana"]["executions"], rows["dana"]["attempts"]) == (2, 3)
        assert (rows["dana"]["completed"], rows["dana"]["failed"]) == (1, 1)
        assert rows["owner"]["executions"] == 1 and rows["(straight from Kafka)"]["executions"] == 1
        assert by_member["total"]["executions"] == 4 and by_member["total"]["attempts"] == 5
        assert by_member["total"]["inputTokens"] == 3 + 1 + 1 + 2  # the failed one's last attempt: "fail"
        assert by_member["total"]["costUsd"] == pytest.approx(4 * 0.0012)

        by_persona = (await checked(owner, "GET", "/api/usage?groupBy=persona", "/api/usage")).json()
        assert {g["key"]: g["executions"] for g in by_persona["groups"]} == {"alpha": 2, "beta": 2}
        by_day = (await owner.get("/api/usage", params={"groupBy": "day", "from": "2020-01-01"})).json()
        assert sum(g["executions"] for g in by_day["groups"]) == 4
        empty = (await owner.get("/api/usage", params={"to": "2020-01-01"})).json()
        assert empty["groups"] == [] and empty["total"]["executions"] == 0
        for bad in ({"groupBy": "week"}, {"from": "yesterday"}, {"from": "2030-01-01", "to": "2020-01-01"}):
            refused = await checked(
                owner, "GET", "/api/usage?" + "&".join(f"{k}={v}" for k, v in bad.items()), "/api/usage"
            )
            assert refused.status_code == 400, bad
