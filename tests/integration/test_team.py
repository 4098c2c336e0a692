"""A team over real processes: invites and joining, contributed credentials and their statuses, who
may change what, revoking a member, and a master-key rotation that keeps every secret and key."""

from __future__ import annotations

import secrets

import httpx
import pytest

from dac_provision import ClientError, StateStore
from dac_provision.membership import join_async
from dac_runtime.crypto import key_id
from dac_runtime.orchestrator.team.invites import connect_string
from tests.harness import (
    checked,
    read_topic,
    restart_orchestrator,
    stop_process,
    store_rows,
    wait_terminal,
    wait_workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.stores]
VALUE = "ghp_" + "Contributed" * 3


async def test_an_invited_contributor_joins_contributes_assigns_and_runs(system, tmp_path):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    store = StateStore(tmp_path / "member-state")
    async with orch.client() as owner:
        await checked(owner, "PUT", "/api/personas/reviewer", "/api/personas/{id}", {"maxConcurrent": 2})
        made = await checked(owner, "POST", "/api/invites", "/api/invites", {"role": "contributor", "name": "alice"})
        assert made.status_code == 201
        invite = made.json()
        viewer_invite = (await owner.post("/api/invites", json={"role": "viewer", "expiresIn": 600})).json()
        assert invite["state"] == "open" and invite["code"] not in (await owner.get("/api/invites")).text

    # The member joins from "their machine" (another state store) with nothing but the connect string.
    alice = await join_async(invite["connectString"], save_as="team", store=store)
    assert (alice.member, alice.role) == ("alice", "contributor") and alice.url == orch.url
    with pytest.raises(ClientError, match="already used"):
        await join_async(invite["connectString"], "mallory", save_as="again", store=store)
    with pytest.raises(ClientError, match="not a connect string"):
        await join_async("https://example.invalid/?code=x", save_as="x", store=store)
    bob = await join_async(viewer_invite["connectString"], "bob", save_as="view", store=store)
    assert bob.role == "viewer"

    async with alice.client() as member:
        await member.set_credential("GITHUB_TOKEN", VALUE, service="github", metadata={"account": "alice"})
        listed = await member.credentials()
        assert [(c["name"], c["mine"], c["status"], c["service"]) for c in listed] == [
            ("GITHUB_TOKEN", True, "unassigned", "github")
        ]
        assigned = await member.assign_credential("reviewer", "GITHUB_TOKEN")
        assert assigned["credentials"] == ["GITHUB_TOKEN"]
        result = await (await member.execute("reviewer", "plain env:GITHUB_TOKEN")).wait()
        assert result.status == "completed"
        ran = result.execution_id
        mine = (await member.credentials())[0]
        assert mine["status"] == "healthy" and mine["personas"] == ["reviewer"] and mine["lastUsedAt"]
        usage = (await member.usage(group_by="member"))["groups"]
        assert [(g["name"], g["executions"]) for g in usage] == [("alice", 1)]
        assert (await member.get(ran))["credentials"] == ["GITHUB_TOKEN"]
    records = await read_topic(orch.bootstrap, orch.topics.output, lambda rs: any(r["executionId"] == ran for r in rs))
    said = "".join(r["chunk"] for r in records if r["executionId"] == ran)
    assert "GITHUB_TOKEN=[REDACTED]" in said  # the agent had the value; it was masked on the way out

    # Nobody reads the value back: not the contributor, not the owner, through any read there is.
    async with orch.client() as owner, httpx.AsyncClient(base_url=orch.url) as anon:
        for client in (
            owner,
            httpx.AsyncClient(base_url=orch.url, headers={"Authorization": f"Bearer {alice.api_key}"}),
        ):
            for path in (
                "/api/credentials",
                "/api/personas",
                f"/api/executions/{ran}",
                "/api/executions",
                "/api/usage",
            ):
                body = (await client.get(path)).text
                assert VALUE not in body and VALUE[4:20] not in body, path
        assert (await anon.post("/api/join", json={"code": "dacinv_guess"})).status_code == 403

        # The viewer reads, but runs nothing and sees no credential.
        as_bob = {"Authorization": f"Bearer {bob.api_key}"}
        assert (await owner.get("/api/executions", headers=as_bob)).status_code == 200
        for method, path in (("POST", "/api/execute"), ("GET", "/api/credentials"), ("PUT", "/api/credentials/X")):
            assert (await owner.request(method, path, headers=as_bob, json={"value": "v"})).status_code == 403

        # Alice cannot replace or revoke what the owner contributed; the owner can revoke hers.
        assert (await owner.put("/api/credentials/OWNERS", json={"value": "owner-secret"})).status_code == 201
        as_alice = {"Authorization": f"Bearer {alice.api_key}"}
        for method in ("PUT", "DELETE"):
            refused = await owner.request(method, "/api/credentials/OWNERS", headers=as_alice, json={"value": "x"})
            assert refused.status_code == 403 and refused.json()["error"] == "not_yours"
        grab = await owner.put("/api/personas/reviewer/credentials/OWNERS", headers=as_alice)
        assert grab.status_code == 403

        # Revoking alice: her key fails on the very next call; her credential is flagged, withheld.
        removed = await checked(owner, "DELETE", f"/api/team/{alice.member_id}", "/api/team/{id}")
        assert removed.json() == {"id": alice.member_id, "flaggedCredentials": 1}
        assert (await owner.get("/api/executions", headers=as_alice)).status_code == 401
        flagged = {
            c["name"]: c
            for c in (await checked(owner, "GET", "/api/credentials", "/api/credentials")).json()["credentials"]
        }
        assert flagged["GITHUB_TOKEN"]["status"] == "flagged" and "alice" in flagged["GITHUB_TOKEN"]["note"]
        held = (await owner.post("/api/execute", json={"personaId": "reviewer", "prompt": "plain x"})).json()
        ended = await wait_terminal(owner, held["executionId"])
        assert ended["status"] == "failed" and "withheld" in ended["reason"]
        assert (await owner.post("/api/credentials/GITHUB_TOKEN/adopt")).status_code == 204
        again = (await owner.post("/api/execute", json={"personaId": "reviewer", "prompt": "plain x"})).json()
        assert (await wait_terminal(owner, again["executionId"]))["status"] == "completed"


async def test_invites_expire_are_withdrawn_and_an_owner_revoking_leaves_a_tombstone(system):
    orch, _ = system(workers=0)
    async with orch.client() as owner:
        short = (await owner.post("/api/invites", json={"role": "contributor", "name": "c", "expiresIn": 1})).json()
        gone = (await owner.post("/api/invites", json={"name": "d"})).json()
        assert (await checked(owner, "DELETE", f"/api/invites/{gone['id']}", "/api/invites/{id}")).status_code == 204
        assert (await owner.delete(f"/api/invites/{gone['id']}")).status_code == 409
        nameless = (await owner.post("/api/invites", json={})).json()
        bad = await checked(owner, "POST", "/api/invites", "/api/invites", {"role": "admin"})
        assert bad.status_code == 400 and "role must be one of" in bad.json()["message"]
        async with httpx.AsyncClient(base_url=orch.url) as anon:
            refused = await checked(anon, "POST", "/api/join", "/api/join", {"code": gone["code"]})
            assert refused.status_code == 403 and "withdrawn" in refused.json()["message"]
            no_name = (await anon.post("/api/join", json={"code": nameless["code"]})).json()
            assert "give your name" in no_name["message"]
            carol = await checked(anon, "POST", "/api/join", "/api/join", {"code": nameless["code"], "name": "carol"})
            assert carol.status_code == 201 and carol.json()["role"] == "contributor"
            await wait_past(short["expiresAt"])
            late = (await anon.post("/api/join", json={"code": short["code"]})).json()
            assert "expired" in late["message"] and short["code"] not in late["message"]
        states = {i["id"]: i["state"] for i in (await owner.get("/api/invites")).json()["invites"]}
        assert states == {short["id"]: "expired", gone["id"]: "withdrawn", nameless["id"]: "used"}

        as_carol = {"Authorization": f"Bearer {carol.json()['apiKey']}"}
        put = await owner.put("/api/credentials/CAROLS", headers=as_carol, json={"value": "c-secret", "expiresAt": 1})
        assert put.status_code == 201
        statuses = {c["name"]: c["status"] for c in (await owner.get("/api/credentials")).json()["credentials"]}
        assert statuses == {"CAROLS": "expired"}
        revoked = await checked(owner, "DELETE", "/api/credentials/CAROLS", "/api/credentials/{name}")
        assert revoked.json() == {"name": "CAROLS", "status": "owner_revoked"}
        seen = (await owner.get("/api/credentials", headers=as_carol)).json()["credentials"]
        assert seen[0]["status"] == "owner_revoked" and seen[0]["mine"] and "revoked by owner" in seen[0]["note"]
        assert (await owner.delete("/api/credentials/CAROLS", headers=as_carol)).status_code == 204
        assert (await owner.get("/api/credentials")).json()["credentials"] == []


async def wait_past(when: float) -> None:
    import asyncio
    import time

    await asyncio.sleep(max(0.0, when - time.time()) + 0.05)


async def test_a_master_key_rotation_reseals_every_secret_and_keeps_every_key(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    async with orch.client() as owner:
        assert (await owner.put("/api/credentials/ROTATED", json={"value": "rotate-me"})).status_code == 201
        member = (await owner.post("/api/team", json={"name": "m", "role": "viewer"})).json()
    old, new = orch.env["DAC_MASTER_KEY"], secrets.token_hex(32)
    stop_process(orch.proc)
    orch.env.update(DAC_MASTER_KEY=new, DAC_PREVIOUS_MASTER_KEYS=old)
    restart_orchestrator(orch)
    ids = {bytes(blob[1:5]) for (blob,) in await store_rows(orch, "SELECT blob FROM sealed")}
    assert ids == {key_id(_vault_key(new))}  # every sealed value now under the new key
    async with orch.client() as owner:  # the owner's and the member's keys still work (re-hashed on use)
        assert (await owner.get("/api/workers")).status_code == 200
        as_member = {"Authorization": f"Bearer {member['apiKey']}"}
        assert (await owner.get("/api/executions", headers=as_member)).status_code == 200
        run = await owner.post("/api/execute", json={"personaId": "p", "prompt": "plain x", "credentials": ["ROTATED"]})
        assert (await wait_terminal(owner, run.json()["executionId"]))["status"] == "completed"
    stop_process(orch.proc)
    del orch.env["DAC_PREVIOUS_MASTER_KEYS"]  # the old key dropped: what was used since still works
    restart_orchestrator(orch)
    async with orch.client() as owner:
        assert (await owner.get("/api/executions", headers=as_member)).status_code == 200
        run = await owner.post("/api/execute", json={"personaId": "p", "prompt": "plain x", "credentials": ["ROTATED"]})
        assert (await wait_terminal(owner, run.json()["executionId"]))["status"] == "completed"


def _vault_key(hex_key: str) -> bytes:
    from dac_runtime.crypto import derive_key

    return derive_key(bytes.fromhex(hex_key), "vault")


def test_connect_strings_carry_the_url_and_code_and_nothing_else():
    from dac_runtime.orchestrator.team.invites import parse_connect_string

    text = connect_string("https://orch.example:8443", "dacinv_abc-_123")
    assert text.startswith("daci1.") and "https" not in text
    assert parse_connect_string(text) == ("https://orch.example:8443", "dacinv_abc-_123")
