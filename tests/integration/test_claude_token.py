"""The Claude token's life: its expiry known or estimated, a warning under 30 days (API, /healthz,
the gauge), and executions refused once it has expired, through the API and from Kafka alike."""

from __future__ import annotations

import os
import re
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness import ROOT, checked, produce_request, read_topic, submit, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]
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


FAKES = str(ROOT / "tests" / "fakes")  # a `claude` that behaves as the real one does in a terminal


async def test_the_subscription_connects_through_a_workers_claude_cli_in_a_pty(system):
    orch, workers = system(workers=1, worker_env={"PATH": f"{FAKES}:{os.environ['PATH']}"})
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        member = (await owner.post("/api/team", json={"name": "c", "role": "contributor"})).json()
        as_member = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await owner.post("/api/oauth/authorize", headers=as_member)).status_code == 403

        started = await checked(owner, "POST", "/api/oauth/authorize", "/api/oauth/authorize")
        assert started.status_code == 201, started.text
        login = started.json()
        assert login["worker"] == "w0" and login["url"].startswith("https://claude.example/oauth/authorize?")
        state = parse_qs(urlsplit(login["url"]).query)["state"][0]
        callback = "/api/oauth/callback"
        forged = await checked(owner, "POST", callback, callback, {"session": login["session"], "code": "c0de#other"})
        assert forged.status_code == 400 and forged.json()["error"] == "state_mismatch"
        bad = await checked(owner, "POST", callback, callback, {"session": "login_nope", "code": f"c#{state}"})
        assert bad.status_code == 404
        before = time.time()
        done = await checked(owner, "POST", callback, callback, {"session": login["session"], "code": f"c0de#{state}"})
        assert done.status_code == 200, done.text
        connected = done.json()
        assert connected["configured"] and connected["expiresEstimated"] is False and connected["warning"] is None
        assert before + 365 * DAY <= connected["expiresAt"] <= time.time() + 365 * DAY  # minted just now
        again = await owner.post(callback, json={"session": login["session"], "code": f"c0de#{state}"})
        assert again.status_code == 404  # a login is finished once

        ran = await submit(owner, "plain env:CLAUDE_CODE_OAUTH_TOKEN")
        assert (await wait_terminal(owner, ran))["status"] == "completed"
    records = await read_topic(orch.bootstrap, orch.topics.output, lambda rs: any(r["executionId"] == ran for r in rs))
    said = "".join(r["chunk"] for r in records if r["executionId"] == ran)
    assert "CLAUDE_CODE_OAUTH_TOKEN=[REDACTED]" in said  # the agent runs with the token the CLI printed
    logs = orch.log() + (orch.workdir / "w0.log").read_text()
    assert "sk-ant-oat01-" not in logs and state not in logs
    assert not [p for p in psutil_children(workers[0]) if "setup-token" in " ".join(p)]  # the CLI is gone


async def test_without_a_worker_that_has_the_cli_authorize_says_so(system):
    orch, _ = system(workers=1, worker_env={"PATH": "/usr/bin:/bin", "DAC_AGENT_COMMAND": sys.executable})
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        refused = await checked(owner, "POST", "/api/oauth/authorize", "/api/oauth/authorize")
        assert refused.status_code == 503 and "token connect --here" in refused.json()["message"]


def psutil_children(proc) -> list[list[str]]:
    """Command lines of the processes whose parent is ``proc`` (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid:
                found.append([c.decode(errors="replace") for c in cmdline if c])
    return found
