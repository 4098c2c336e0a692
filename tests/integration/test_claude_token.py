"""The Claude token's life: its expiry known or estimated, a warning under 30 days (API, /healthz,
the gauge), and executions refused once it has expired, through the API and from Kafka alike."""

from __future__ import annotations

import re
import time

import pytest

from tests.harness import checked, produce_request, submit, wait_terminal, wait_workers

pytestmark = pytest.mark.integration
SETUP_TOKEN = "sk-ant-oat01-" + "LifeOfAToken" * 4
DAY = 86400


def gauge(metrics: str) -> float:
    return float(re.search(r"^dac_claude_token_expires_at_seconds (\S+)", metrics, re.M).group(1))


async def test_expiry_is_tracked_warned_and_enforced(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        assert (await checked(client, "GET", "/api/token", "/api/token")).json() == {"configured": False}
        assert gauge((await client.get("/metrics")).text) == 0

        stored_at = time.time()
        await checked(client, "PUT", "/api/token", "/api/token", {"token": SETUP_TOKEN})
        state = (await checked(client, "GET", "/api/token", "/api/token")).json()
        assert state["expiresEstimated"] is True and state["warning"] is None and state["expired"] is False
        assert stored_at + 365 * DAY <= state["expiresAt"] <= time.time() + 365 * DAY
        assert gauge((await client.get("/metrics")).text) == pytest.approx(state["expiresAt"])

        await checked(
            client, "PUT", "/api/token", "/api/token", {"token": SETUP_TOKEN, "mintedAt": time.time() - 355 * DAY}
        )
        state = (await client.get("/api/token")).json()
        assert state["expiresEstimated"] is False and "expires in 10 day(s)" in state["warning"]
        health = (await client.get("/healthz")).json()
        assert health["warnings"] == [state["warning"]]
        ran = await submit(client, "lines:1")
        assert (await wait_terminal(client, ran))["status"] == "completed"  # a warning does not stop anything

        await checked(client, "PUT", "/api/token", "/api/token", {"token": SETUP_TOKEN, "expiresAt": time.time() - 60})
        assert (await client.get("/api/token")).json()["expired"] is True
        refused = await checked(client, "POST", "/api/execute", "/api/execute", {"personaId": "p", "prompt": "lines:1"})
        assert refused.status_code == 409 and refused.json()["error"] == "claude_token_expired"
        assert "expired at" in refused.json()["message"] and SETUP_TOKEN not in refused.text

        await produce_request(orch, {"executionId": "from-kafka-1", "personaId": "p", "prompt": "lines:1"})
        failed = await wait_terminal(client, "from-kafka-1")
        assert failed["status"] == "failed" and failed["reason"].startswith("claude_token_expired: ")

        assert (await client.delete("/api/token")).status_code == 204
        again = await submit(client, "lines:1")
        assert (await wait_terminal(client, again))["status"] == "completed"
    assert SETUP_TOKEN not in orch.log()
