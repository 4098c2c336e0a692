"""A change to the team made through one orchestrator holds on every other within a check of the
team counter (team/changes.py): they keep personas, credentials and authenticated API keys in
memory, and before the counter a removed member's key kept working on the orchestrators that had
seen it, and a persona's new limit or a revoked credential stayed unknown there until a restart."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import until

pytestmark = [pytest.mark.integration, pytest.mark.ha]


async def test_personas_credentials_and_removed_keys_hold_on_every_orchestrator(cluster):
    c = cluster(2)
    here, there = c.orchs
    async with here.client() as a, there.client() as b:
        # A member's key, used on both (so both have it in memory), then removed through one.
        member = (await a.post("/api/team", json={"name": "bob", "role": "viewer"})).json()
        as_bob = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await b.get("/api/executions", headers=as_bob)).status_code == 200
        assert (await a.get("/api/executions", headers=as_bob)).status_code == 200

        put = await a.put("/api/personas/shared", json={"maxConcurrent": 3})
        assert put.status_code in (200, 201), put.text
        credential = await a.put("/api/credentials/TOKEN_X", json={"value": "s3cret-value-x"})
        assert credential.status_code in (200, 201), credential.text

        async def b_knows_them() -> bool:
            persona = await b.get("/api/personas/shared")
            names = {row["name"] for row in (await b.get("/api/credentials")).json()["credentials"]}
            return persona.status_code == 200 and persona.json()["maxConcurrent"] == 3 and "TOKEN_X" in names

        await until(b_knows_them, timeout=10, what="the persona and the credential known to the other")
        assert (await a.delete(f"/api/team/{member['id']}")).status_code == 200
        assert (await a.delete("/api/credentials/TOKEN_X")).status_code in (200, 204)

        async def b_forgot_them() -> bool:
            refused = (await b.get("/api/executions", headers=as_bob)).status_code == 401
            names = {row["name"] for row in (await b.get("/api/credentials")).json()["credentials"]}
            return refused and "TOKEN_X" not in names

        await until(b_forgot_them, timeout=10, what="the removed key refused and the credential gone on the other")
        async with httpx.AsyncClient(base_url=there.url, headers=as_bob) as bob:
            assert (await bob.get("/api/personas")).status_code == 401
