"""The deployment's console at ``/console``: served by the orchestrator itself (same process and
port, nothing built with npm, nothing from a CDN), signed in with an API key, showing what the API
shows and allowing what the API allows to the same role.

One module per job: ``sessions`` (cookie and CSRF), ``guard`` (role checks, rendering), ``pages``
(what is shown), ``actions`` (the forms), ``live`` (server-sent events).
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from . import actions, live, pages
from .guard import SESSIONS_KEY
from .sessions import Sessions

#: The console's own files, read through importlib so that they are served when the runtime runs
#: straight from its wheel (a zip), as Fly machines run it.
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
_loaded: dict[str, bytes] = {}


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    if name not in _loaded:
        _loaded[name] = resources.files(__package__).joinpath("static", name).read_bytes()
    return web.Response(body=_loaded[name], content_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


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
        web.get("/console/static/{name}", static),
    ]
