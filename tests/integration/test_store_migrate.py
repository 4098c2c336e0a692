"""`dac-provision store migrate`: a deployment moves from SQLite to PostgreSQL and carries on as it was.

A real orchestrator on SQLite builds some state (a member, a credential, an execution, a dead letter),
stops; the CLI copies its file into a real PostgreSQL database; the same orchestrator, started on that
database, knows everything: the member's key works, the sealed credential unseals into a new run, the
history reads the same.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import read_topic, restart_orchestrator, stop_process, store_rows, wait_terminal, wait_workers

pytestmark = pytest.mark.integration
VALUE = "ghp_" + "M0vedAcross" * 3


async def test_a_deployment_moves_to_postgres_with_everything_it_knew(system, postgres_url, tmp_path):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        assert (await owner.put("/api/credentials/MOVED", json={"value": VALUE})).status_code == 201
        member = (await owner.post("/api/team", json={"name": "mover", "role": "viewer"})).json()
        first = (await owner.post("/api/execute", json={"personaId": "p", "prompt": "plain lines:1"})).json()
        assert (await wait_terminal(owner, first["executionId"]))["status"] == "completed"
        doomed = await owner.post("/api/execute", json={"personaId": "p", "prompt": "x", "credentials": ["NOPE"]})
        assert (await wait_terminal(owner, doomed.json()["executionId"]))["status"] == "failed"
        before = (await owner.get(f"/api/executions/{first['executionId']}")).json()

    db = orch.env["DAC_DB_PATH"]
    refused = await _cli("--from", db, postgres_url)
    assert refused.returncode == 2 and "holds a password" in refused.stderr
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in refused.stdout + refused.stderr

    stop_process(orch.proc)
    moved = await _cli("--from", db, "-", stdin=postgres_url + "\n")
    assert moved.returncode == 0, moved.stderr
    assert "copied" in moved.stderr and password not in moved.stdout + moved.stderr
    rows = dict(await _counts(postgres_url))
    assert rows["executions"] == 2 and rows["credentials"] == 1 and rows["dead_letters"] == 1

    again = await _cli("--from", db, "-", stdin=postgres_url)
    assert again.returncode == 2 and "already holds data" in again.stderr  # never merged into a used database

    url_file = tmp_path / "store-url"
    url_file.write_text(postgres_url)
    url_file.chmod(0o600)
    orch.env.update(DAC_STORE_URL_FILE=str(url_file), DAC_DB_PATH=str(tmp_path / "not-used.db"))
    restart_orchestrator(orch)
    assert not (tmp_path / "not-used.db").exists()
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        as_member = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await owner.get(f"/api/executions/{first['executionId']}", headers=as_member)).json() == before
        assert len((await owner.get("/api/dead-letters")).json()["deadLetters"]) == 1
        run = await owner.post(
            "/api/execute", json={"personaId": "p", "prompt": "plain env:MOVED", "credentials": ["MOVED"]}
        )
        assert (await wait_terminal(owner, run.json()["executionId"]))["status"] == "completed"
    output = await read_topic(orch.bootstrap, orch.topics.output, lambda rs: any("MOVED=" in r["chunk"] for r in rs))
    assert "MOVED=[REDACTED]" in "".join(r["chunk"] for r in output)  # unsealed, handed over, redacted
    assert await store_rows(orch, "SELECT COUNT(*) FROM executions") == [(3,)]


async def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The installed command, as an operator runs it."""
    argv = [str(Path(sys.executable).parent / "dac-provision"), "store", "migrate", "--to", "postgres", *args]
    return await asyncio.to_thread(subprocess.run, argv, input=stdin, capture_output=True, text=True, timeout=60)


async def _counts(url: str) -> list[tuple[str, int]]:
    from dac_runtime.orchestrator.store import open_store
    from dac_runtime.orchestrator.store.copy import TABLES

    store = await open_store(url)
    try:
        return [(table, int(await store.fetchval(f"SELECT COUNT(*) FROM {table}"))) for table in TABLES]  # noqa: S608
    finally:
        await store.close()
