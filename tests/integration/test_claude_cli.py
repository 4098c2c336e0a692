"""The real Claude Code CLI as the agent. It cannot reach its API here: the run must end failed, cleanly,
with what the CLI said relayed."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness import ROOT, read_topic, wait_terminal, wait_workers

pytestmark = pytest.mark.integration
CLAUDE_VERSION = "2.1.197"  # the newest release that runs on Node 20
PREFIX = ROOT / ".cache" / "claude-code"


@pytest.fixture(scope="module")
def claude_bin() -> str:
    installed = PREFIX / "node_modules" / ".bin" / "claude"
    if not installed.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so the Claude Code CLI cannot be installed here")
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(PREFIX),
                f"@anthropic-ai/claude-code@{CLAUDE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return str(installed)


async def test_real_claude_cli_fails_cleanly_without_its_api(system, claude_bin, monkeypatch):
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "0")
    token = "sk-ant-oat01-" + "NotARealToken" * 4
    command = [claude_bin, "-p", "--output-format", "stream-json", "--verbose", "--", "{prompt}"]
    orch, _ = system(
        workers=1,
        command=command,
        worker_env={"DAC_AGENT_PASSTHROUGH": "CLAUDE_CODE_MAX_RETRIES", "CLAUDE_CODE_MAX_RETRIES": "0"},
    )
    await wait_workers(orch, 1)
    async with orch.client() as client:
        await client.put("/api/token", json={"token": token})
        r = await client.post("/api/execute", json={"personaId": "p", "prompt": "say hello", "timeoutMs": 120_000})
        final = await wait_terminal(client, r.json()["executionId"], timeout=150)
        # The same worker connects a subscription with this CLI: `claude setup-token` in a pty on it
        # prints Claude Code's own authorization URL, which the API relays.
        login = await client.post("/api/oauth/authorize")
        assert login.status_code == 201, login.text
        url = urlsplit(login.json()["url"])
        query = parse_qs(url.query)
        assert (url.scheme, url.path.endswith("/oauth/authorize")) == ("https", True), url
        assert query["scope"] == ["user:inference"] and query["state"][0] and query["code_challenge_method"] == ["S256"]
    assert final["status"] == "failed", final
    output = await read_topic(
        orch.bootstrap, orch.topics.output, lambda recs: any('"result"' in x["chunk"] for x in recs)
    )
    text = "".join(x["chunk"] for x in output)
    worker_log = (orch.workdir / "w0.log").read_text(errors="replace")[-2000:]
    assert '"type":"system"' in text and '"is_error":true' in text and "API Error" in text, (final, worker_log)
    assert token not in text


async def test_prompts_that_look_like_options_reach_the_real_cli_as_prompts(system, claude_bin, monkeypatch):
    """Before the ``--``, the prompt ``--version`` made the CLI print its version and exit 0 (completed),
    and ``--settings=...`` would have loaded a settings file of the submitter's choosing."""
    command = [claude_bin, "-p", "--output-format", "stream-json", "--verbose", "--", "{prompt}"]
    orch, _ = system(
        workers=2,
        command=command,
        worker_env={"DAC_AGENT_PASSTHROUGH": "CLAUDE_CODE_MAX_RETRIES", "CLAUDE_CODE_MAX_RETRIES": "0"},
    )
    await wait_workers(orch, 2)
    async with orch.client() as client:
        await client.put("/api/token", json={"token": "sk-ant-oat01-" + "NotARealToken" * 4})
        ids = []
        for prompt in ("--version", "--settings=/nonexistent/evil.json say hi"):
            r = await client.post("/api/execute", json={"personaId": "p", "prompt": prompt, "timeoutMs": 120_000})
            ids.append(r.json()["executionId"])
        finals = [await wait_terminal(client, e, timeout=150) for e in ids]
    output = await read_topic(
        orch.bootstrap,
        orch.topics.output,
        lambda recs: sum('"result"' in x["chunk"] for x in recs) >= 2,
    )
    for execution_id, final in zip(ids, finals, strict=True):
        text = "".join(x["chunk"] for x in output if x["executionId"] == execution_id)
        # run as a prompt: a stream-json session that tried the API (unreachable here), not an option
        assert final["status"] == "failed" and '"type":"system"' in text and "API Error" in text, (final, text)
        assert CLAUDE_VERSION not in text.replace('"claude_code_version":"' + CLAUDE_VERSION, "")
        assert "evil.json" not in text.replace("--settings=/nonexistent/evil.json say hi", "")
