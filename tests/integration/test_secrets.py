"""Assigned secret values never reach logs, Kafka output, argv, the database file or API reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness import read_topic, stored_text, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]
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
        assert (await client.put("/api/credentials/GITHUB_TOKEN", json={"value": GITHUB_TOKEN})).status_code == 201
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
    everything.append(await stored_text(orch))
    for blob in everything:
        assert GITHUB_TOKEN not in blob and CLAUDE_TOKEN not in blob
        assert orch.api_key not in blob and orch.worker_token not in blob


TRICKY = 'qu"ote\\back\nslash-ä-S3cr3tTail-😀'


async def test_values_with_quotes_backslashes_newlines_and_non_ascii_are_redacted_in_every_encoding(system):
    """Claude Code's stream-json escapes a value (``\\"``, ``\\\\``, ``\\n``, ``\\u00e4``); before, those
    escaped forms went through unredacted to the API, the store and Kafka."""
    import base64
    import json
    import re
    import urllib.parse

    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    directives = "env:TRICKY env64:TRICKY envurl:TRICKY"
    async with orch.client() as client:
        assert (await client.put("/api/credentials/TRICKY", json={"value": TRICKY})).status_code == 201
        ids = []
        for mode in ("", "node", "plain"):  # JSON with \\u escapes, JSON with raw UTF-8, plain text
            r = await client.post(
                "/api/execute", json={"personaId": "p", "credentials": ["TRICKY"], "prompt": f"{mode} {directives}"}
            )
            ids.append(r.json()["executionId"])
        finals = [await wait_terminal(client, e) for e in ids]
        streamed = "".join([(await client.get(f"/api/executions/{e}/stream")).text for e in ids])
    assert [f["status"] for f in finals] == ["completed"] * 3
    output = await read_topic(
        orch.bootstrap, orch.topics.output, lambda recs: sum("example.invalid" in r["chunk"] for r in recs) >= 3
    )
    kafka_text = "".join(r["chunk"] for r in output if r["executionId"] in ids)
    assert kafka_text.count("TRICKY=[REDACTED]") == 3
    # base64: the characters that encode "user:" (and the one mixing its last byte in) stay
    assert len(re.findall(r"Basic [A-Za-z0-9+/]{0,8}\[REDACTED\]", kafka_text)) == 3, kafka_text
    forms = {
        json.dumps(TRICKY)[1:-1],
        json.dumps(TRICKY, ensure_ascii=False)[1:-1],
        base64.b64encode(b"user:" + TRICKY.encode()).decode()[8:],  # past the bytes that encode "user:"
        urllib.parse.quote(TRICKY, safe=""),
        "S3cr3tTail",  # the distinctive middle, in whatever form
    }
    database = await stored_text(orch)
    for blob in (kafka_text, streamed, database, orch.log()):
        for form in forms:
            assert form not in blob, form
