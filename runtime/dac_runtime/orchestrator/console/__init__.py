"""The deployment's console at ``/console``: served by the orchestrator itself (same process and
port, nothing built with npm, nothing from a CDN), signed in with an API key, showing what the API
shows and allowing what the API allows to the same role.

One module per job: ``sessions`` (cookie and CSRF), ``guard`` (role checks, rendering), ``pages``
(what is shown), ``actions`` (the forms), ``live`` (server-sent events).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import actions, live, pages
from .guard import SESSIONS_KEY
from .sessions import Sessions

STATIC = Path(__file__).parent / "static"

__all__ = ["SESSIONS_KEY", "Sessions", "routes"]


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/console", pages.index),
        web.get("/console/sign-in", pages.sign_in_form),
        web.post("/console/sign-in", pages.sign_in),
        web.post("/console/sign-out", pages.sign_out),
        web.get("/console/overview", pages.overview),
        web.get("/console/workers", pages.workers),
        web.get("/console/executions", pages.executions),
        web.get("/console/executions/{id}", pages.execution),
        web.post("/console/executions/{id}/cancel", actions.cancel),
        web.get("/console/team", pages.team),
        web.post("/console/team/invite", actions.invite),
        web.post("/console/team/{id}/remove", actions.remove_member),
        web.post("/console/credentials/{name}/revoke", actions.revoke_credential),
        web.get("/console/dead-letters", pages.dead_letters),
        web.post("/console/dead-letters", actions.dead_letters),
        web.get("/console/live/workers", live.workers),
        web.get("/console/live/executions/{id}", live.execution),
        web.static("/console/static", STATIC),
    ]
