"""Assigned secret values never reach logs, Kafka output, argv, the database file or API reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness import read_topic, wait_terminal, wait_workers

pytestmark = pytest.mark.integration
CLAUDE_TOKEN = "sk-ant-oat01-" + "T0kenValue" * 5
GITHUB_TOKEN = "ghp_" + "S3cretGithub" * 3


def cmdlines() -> str:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(out)


async def test_secrets_stay_secret(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as client:
        assert (await client.put("/api/token", json={"token": CLAUDE_TOKEN})).status_code == 204
        assert (await client.put("/api/credentials/GITHUB_TOKEN", json={"value": GITHUB_TOKEN})).status_code == 204
        listed = (await client.get("/api/credentials")).text + (await client.get("/api/token")).text
        assert GITHUB_TOKEN not in listed and CLAUDE_TOKEN not in listed and "GITHUB_TOKEN" in listed
        r = await client.post(
            "/api/execute",
            json={
                "personaId": "p",
                "credentials": ["GITHUB_TOKEN"],
                "prompt": "plain env:GITHUB_TOKEN env:CLAUDE_CODE_OAUTH_TOKEN sleep:1.5",
            },
        )
        execution_id = r.json()["executionId"]
        seen_argv = ""
        for _ in range(30):
            seen_argv += cmdlines()
            await asyncio.sleep(0.05)
        final = await wait_terminal(client, execution_id)
        missing = await client.post("/api/execute", json={"personaId": "p", "prompt": "x", "credentials": ["NOPE"]})
        assert (await wait_terminal(client, missing.json()["executionId"]))["reason"] == "unknown credential NOPE"
    assert final["status"] == "completed"
    output = await read_topic(
        orch.bootstrap, orch.topics.output, lambda recs: "CLAUDE_CODE_OAUTH_TOKEN=" in "".join(r["chunk"] for r in recs)
    )
    text = "".join(r["chunk"] for r in output)
    # the agent did receive both values (it printed them), and they were redacted before leaving the worker
    assert "GITHUB_TOKEN=[REDACTED]" in text and "CLAUDE_CODE_OAUTH_TOKEN=[REDACTED]" in text
    everything = [text, seen_argv, orch.log()]
    everything += [p.read_text(errors="replace") for p in orch.workdir.glob("*.log")]
    everything += [p.read_bytes().decode("latin-1") for p in orch.workdir.glob("orchestrator.db*")]
    for blob in everything:
        assert GITHUB_TOKEN not in blob and CLAUDE_TOKEN not in blob
        assert orch.api_key not in blob and orch.worker_token not in blob
