"""Every role against every endpoint: what the access table allows answers anything but 403, what it
does not answers 403; and the table names every route there is."""

from __future__ import annotations

import re

import pytest

from dac_runtime.orchestrator.api import routes
from dac_runtime.orchestrator.api.access import POLICY, ROLES, allowed
from dac_runtime.orchestrator.api.common import PUBLIC

pytestmark = pytest.mark.integration


def private_routes() -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in routes() if r.path not in PUBLIC and not r.path.startswith("/bundle/")}


def test_the_table_names_every_route_and_nothing_else():
    assert set(POLICY) == private_routes()


async def test_each_role_gets_exactly_what_the_table_gives_it(system):
    orch, _ = system(workers=0)
    async with orch.client() as owner:
        keys = {"owner": orch.api_key}
        for role in ("contributor", "viewer"):
            created = (await owner.post("/api/team", json={"name": f"a-{role}", "role": role})).json()
            assert created["role"] == role
            keys[role] = created["apiKey"]
        older = (await owner.post("/api/team", json={"name": "old", "role": "member"})).json()
        assert older["role"] == "contributor"  # the older name is stored as what it means

        outcomes = []
        for method, template in sorted(private_routes()):
            path = re.sub(r"\{id\}", "nobody", template).replace("{name}", "NOT_THERE")
            for role in ROLES:
                headers = {"Authorization": f"Bearer {keys[role]}"}
                body = {} if method in {"POST", "PUT"} else None
                response = await owner.request(method, path, headers=headers, json=body)
                refused = response.status_code == 403
                outcomes.append((method, template, role, response.status_code))
                assert refused != allowed(role, method, template), (method, template, role, response.text)
        assert any(o[3] == 403 for o in outcomes) and any(o[3] != 403 for o in outcomes if o[2] == "viewer")
        # Reads of secrets' existence stay off the viewer; nobody reads a value through any route.
        viewer = {"Authorization": f"Bearer {keys['viewer']}"}
        assert (await owner.get("/api/credentials", headers=viewer)).status_code == 403
        assert (
            await owner.post("/api/execute", headers=viewer, json={"personaId": "p", "prompt": "x"})
        ).status_code == 403
