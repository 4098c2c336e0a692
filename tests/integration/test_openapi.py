"""The published OpenAPI document matches the routes and the real responses of a running orchestrator."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from dac_runtime.orchestrator.api import routes
from tests.harness import wait_terminal, wait_workers

pytestmark = pytest.mark.integration
DOC = json.loads(resources.files("dac_runtime.orchestrator").joinpath("openapi.json").read_text())


def test_every_route_is_documented_and_nothing_else():
    served = {(r.method.lower(), r.path) for r in routes()}
    documented = {(m, path) for path, ops in DOC["paths"].items() for m in ops}
    assert served == documented


async def test_real_responses_match_the_document(system):
    orch, _ = system(workers=1)
    await wait_workers(orch, 1)
    spec = OpenAPI.from_dict(DOC)
    checked = 0

    async def call(client, method, path, template, body=None):
        nonlocal checked
        response = await client.request(method, path, json=body)
        request = MockRequest(
            orch.url,
            method.lower(),
            path,
            path_pattern=template,
            headers={"Authorization": client.headers["Authorization"], "Content-Type": "application/json"},
            data=json.dumps(body).encode() if body is not None else None,
        )
        content_type = response.headers.get("content-type", "application/json").split(";")[0]
        spec.validate_response(
            request, MockResponse(response.content, status_code=response.status_code, content_type=content_type)
        )
        checked += 1
        return response

    async with orch.client() as client:
        r = await call(client, "POST", "/api/execute", "/api/execute", {"personaId": "p", "prompt": "lines:2"})
        execution_id = r.json()["executionId"]
        await wait_terminal(client, execution_id)
        await call(client, "GET", f"/api/executions/{execution_id}", "/api/executions/{id}")
        await call(client, "GET", "/api/executions/nope", "/api/executions/{id}")
        listed = await call(client, "GET", "/api/executions?status=completed&limit=5", "/api/executions")
        assert [e["executionId"] for e in listed.json()["executions"]] == [execution_id]
        assert listed.json()["counts"] == {"completed": 1}
        bad = await call(client, "GET", "/api/executions?limit=0", "/api/executions")
        assert bad.status_code == 400 and "limit" in bad.json()["message"]
        await call(client, "POST", f"/api/executions/{execution_id}/cancel", "/api/executions/{id}/cancel")
        await call(client, "POST", "/api/execute", "/api/execute", {"personaId": "p"})
        await call(client, "GET", "/api/workers", "/api/workers")
        await call(client, "PUT", "/api/credentials/API_TOKEN", "/api/credentials/{name}", {"value": "abcdefgh"})
        await call(client, "GET", "/api/credentials", "/api/credentials")
        await call(client, "GET", "/api/token", "/api/token")
        await call(client, "POST", "/api/team", "/api/team", {"name": "dev", "role": "member"})
        await call(client, "GET", "/api/team", "/api/team")
        await call(client, "GET", "/healthz", "/healthz")
    assert checked == 14
