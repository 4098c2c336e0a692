"""The Claude login relay answers through any orchestrator: the start is relayed to one whose worker
has the claude CLI, the callback to the one that started the login (its epoch is in the session id),
and the token it seals is then known to every orchestrator. Behind one address the caller cannot
choose; before, both answered "no worker has the CLI" or "no such login" from the others."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness import ROOT, until

pytestmark = [pytest.mark.integration, pytest.mark.ha]
FAKES = str(ROOT / "tests" / "fakes")  # a `claude` that behaves as the real one does in a terminal


async def test_a_login_started_and_finished_through_an_orchestrator_without_the_cli(cluster):
    c = cluster(2)
    with_cli, without = c.orchs
    c.start_worker("w0", with_cli.ws_url, PATH=f"{FAKES}:{os.environ['PATH']}")
    async with without.client() as api:

        async def peer_offers_logins() -> bool:
            return (await api.get("/api/capacity")).json()["workers"].get("idle") == 1

        await until(peer_offers_logins, timeout=20, what="the peer's worker in the deployment view")
        started = await api.post("/api/oauth/authorize")
        assert started.status_code == 201, started.text
        login = started.json()
        assert login["worker"] == "w0" and login["session"].startswith("login_")
        state = parse_qs(urlsplit(login["url"]).query)["state"][0]
        forged = await api.post("/api/oauth/callback", json={"session": login["session"], "code": "c0de#other"})
        assert forged.status_code == 400 and forged.json()["error"] == "state_mismatch"  # checked where it runs
        done = await api.post("/api/oauth/callback", json={"session": login["session"], "code": f"c0de#{state}"})
        assert done.status_code == 200 and done.json()["configured"], done.text
        unknown = await api.post("/api/oauth/callback", json={"session": "login_99999_00", "code": f"c#{state}"})
        assert unknown.status_code == 404

        async def token_known_here() -> bool:
            return (await api.get("/api/token")).json()["configured"] is True

        await until(token_known_here, timeout=10, what="the sealed token known to the orchestrator without the CLI")
    assert state not in with_cli.log() + without.log()
