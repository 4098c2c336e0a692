"""Personas over real processes: stored definitions, their credentials and defaults given to their
executions, and ``maxConcurrent`` held by dispatch while other personas go on."""

from __future__ import annotations

import pytest

from tests.harness import checked, read_topic, submit, until, wait_terminal, wait_workers

pytestmark = [pytest.mark.integration, pytest.mark.stores]
SECRET = "ghp_" + "PersonaScoped" * 3


async def test_a_persona_gives_its_executions_its_credentials_and_defaults(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    one = "/api/personas/{id}"
    async with orch.client() as client:
        assert (await client.put("/api/credentials/GITHUB_TOKEN", json={"value": SECRET})).status_code == 201
        created = await checked(client, "PUT", "/api/personas/reviewer", one, {"timeoutMs": 1500})
        assert created.status_code == 201 and created.json()["name"] == "reviewer"
        missing = await checked(client, "PUT", "/api/personas/reviewer/credentials/NOPE", one + "/credentials/{name}")
        assert missing.status_code == 404 and missing.json()["error"] == "no_credential"
        assigned = await checked(
            client, "PUT", "/api/personas/reviewer/credentials/GITHUB_TOKEN", one + "/credentials/{name}"
        )
        assert assigned.json()["credentials"] == ["GITHUB_TOKEN"]
        listed = await checked(client, "GET", "/api/personas", "/api/personas")
        assert [p["personaId"] for p in listed.json()["personas"]] == ["reviewer"]
        assert SECRET not in listed.text
        member = (await client.post("/api/team", json={"name": "dev", "role": "member"})).json()
        as_member = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await client.get("/api/personas/reviewer", headers=as_member)).status_code == 200
        for method, path in (
            ("PUT", "/api/personas/reviewer"),
            ("DELETE", "/api/personas/reviewer"),
            ("PUT", "/api/personas/reviewer/credentials/GITHUB_TOKEN"),
            ("DELETE", "/api/personas/reviewer/credentials/GITHUB_TOKEN"),
        ):
            refused = await client.request(method, path, headers=as_member, json={})
            assert refused.status_code == 403, (method, path)
        bad = await checked(client, "PUT", "/api/personas/reviewer", one, {"maxConcurrent": 0})
        assert bad.status_code == 400 and "maxConcurrent" in bad.json()["message"]
        assert (await checked(client, "GET", "/api/personas/..x", one)).status_code == 400

        scoped = await submit(client, "plain env:GITHUB_TOKEN", persona="reviewer")
        other = await submit(client, "plain env:GITHUB_TOKEN", persona="someone-else")
        timed = await submit(client, "sleep:30", persona="reviewer")
        assert (await wait_terminal(client, scoped))["status"] == "completed"
        assert (await wait_terminal(client, other))["status"] == "completed"
        assert (await wait_terminal(client, timed))["status"] == "timed_out"  # the persona's 1.5 s, not 10 min

        unassigned = await checked(
            client, "DELETE", "/api/personas/reviewer/credentials/GITHUB_TOKEN", one + "/credentials/{name}"
        )
        assert unassigned.json()["credentials"] == []
        assert (await checked(client, "DELETE", "/api/personas/reviewer", one)).status_code == 204
        assert (await checked(client, "GET", "/api/personas/reviewer", one)).status_code == 404
    records = await read_topic(
        orch.bootstrap, orch.topics.output, lambda rs: {scoped, other} <= {r["executionId"] for r in rs}
    )
    said = {e: "".join(r["chunk"] for r in records if r["executionId"] == e) for e in (scoped, other)}
    assert "GITHUB_TOKEN=[REDACTED]" in said[scoped]  # the agent had the value, masked on the way out
    assert "GITHUB_TOKEN=\n" in said[other] or said[other].rstrip().endswith("GITHUB_TOKEN=")


async def test_max_concurrent_holds_while_other_personas_go_on(system):
    orch, _ = system(workers=4)
    await wait_workers(orch, 4)
    async with orch.client() as client:
        put = await client.put("/api/personas/narrow", json={"maxConcurrent": 2})
        assert put.status_code == 201
        narrow = [await submit(client, "sleep:0.4", persona="narrow") for _ in range(20)]

        async def two_run_and_the_rest_wait() -> bool:
            seen = (await client.get("/api/personas/narrow")).json()
            assert seen["running"] <= 2, seen
            return seen["running"] == 2 and seen["waiting"] > 0

        await until(two_run_and_the_rest_wait, what="two narrow runs, the rest waiting")
        wide = [await submit(client, "sleep:0.2", persona="wide") for _ in range(4)]
        finals = {e: await wait_terminal(client, e, timeout=60) for e in narrow + wide}
    assert {f["status"] for f in finals.values()} == {"completed"}
    lifecycle = await read_topic(
        orch.bootstrap,
        orch.topics.lifecycle,
        lambda rs: sum(r["status"] == "completed" for r in rs) >= len(finals),
    )
    # Replay the lifecycle: at no moment did more than two of the narrow persona's runs hold a worker.
    holding, most = set(), 0
    for record in sorted(lifecycle, key=lambda r: r["timestamp"]):
        if record["executionId"] not in narrow:
            continue
        if record["status"] == "dispatched":
            holding.add(record["executionId"])
        elif record["status"] in {"completed", "failed", "timed_out", "cancelled"}:
            holding.discard(record["executionId"])
        most = max(most, len(holding))
    assert most == 2
    # The other persona did not wait behind the narrow one's backlog.
    last_wide = max(f["updatedAt"] for e, f in finals.items() if e in wide)
    last_narrow = max(f["updatedAt"] for e, f in finals.items() if e in narrow)
    assert last_wide < last_narrow
