"""The real Claude Code CLI as the agent. It cannot reach its API here: the run must end failed, cleanly,
with what the CLI said relayed."""

from __future__ import annotations

import shutil
import subprocess

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
    command = [claude_bin, "-p", "{prompt}", "--output-format", "stream-json", "--verbose"]
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
    assert final["status"] == "failed", final
    output = await read_topic(
        orch.bootstrap, orch.topics.output, lambda recs: any('"result"' in x["chunk"] for x in recs)
    )
    text = "".join(x["chunk"] for x in output)
    assert '"type":"system"' in text and '"is_error":true' in text and "API Error" in text
    assert token not in text
