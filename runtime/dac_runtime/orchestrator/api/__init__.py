"""The orchestrator's HTTP API (documented in ``openapi.json``, served at ``/openapi.json``), one
module per resource. Secret values are accepted here and never returned: reads show names and
timestamps only.
"""

from __future__ import annotations

from aiohttp import web

from . import capacity, credentials, dead_letters, executions, oauth, personas, service, team, token, usage, workers
from .common import ORCH_KEY, bearer_token, middleware

__all__ = ["ORCH_KEY", "bearer_token", "middleware", "routes"]


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/execute", executions.execute),
        web.get("/api/executions", executions.list_executions),
        web.get("/api/executions/{id}", executions.get_execution),
        web.get("/api/executions/{id}/stream", executions.stream_execution),
        web.post("/api/executions/{id}/cancel", executions.cancel_execution),
        web.get("/api/workers", workers.list_workers),
        web.get("/api/usage", usage.get_usage),
        web.get("/api/personas", personas.list_personas),
        web.get("/api/personas/{id}", personas.get_persona),
        web.put("/api/personas/{id}", personas.put_persona),
        web.delete("/api/personas/{id}", personas.delete_persona),
        web.put("/api/personas/{id}/credentials/{name}", personas.assign_credential),
        web.delete("/api/personas/{id}/credentials/{name}", personas.unassign_credential),
        web.get("/api/token", token.get_token),
        web.put("/api/token", token.put_token),
        web.delete("/api/token", token.delete_token),
        web.post("/api/oauth/authorize", oauth.authorize),
        web.post("/api/oauth/callback", oauth.callback),
        web.get("/api/credentials", credentials.list_credentials),
        web.put("/api/credentials/{name}", credentials.put_credential),
        web.delete("/api/credentials/{name}", credentials.delete_credential),
        web.post("/api/credentials/{name}/adopt", credentials.adopt_credential),
        web.post("/api/worker-tokens", workers.create_worker_token),
        web.get("/api/team", team.list_team),
        web.post("/api/team", team.add_member),
        web.delete("/api/team/{id}", team.remove_member),
        web.get("/api/invites", team.list_invites),
        web.post("/api/invites", team.create_invite),
        web.delete("/api/invites/{id}", team.withdraw_invite),
        web.post("/api/join", team.join),
        web.get("/api/capacity", capacity.get_capacity),
        web.put("/api/capacity/lease", capacity.take_lease),
        web.delete("/api/capacity/lease", capacity.release_lease),
        web.get("/api/worker-time", capacity.get_worker_time),
        web.get("/api/dead-letters", dead_letters.list_dead_letters),
        web.post("/api/dead-letters/retry", dead_letters.retry),
        web.post("/api/dead-letters/discard", dead_letters.discard),
        web.get("/bundle/{name}", workers.get_bundle),
        web.get("/healthz", service.healthz),
        web.get("/metrics", service.metrics),
        web.get("/openapi.json", service.openapi),
    ]
