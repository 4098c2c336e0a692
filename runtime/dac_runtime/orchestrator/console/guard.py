"""What every console page and form shares: the session, the role check, the CSRF check, rendering.

Who may see or do what is the API's own table (``api/access.py``): a page is shown when its API read
is allowed, a button when its API call is, a form is accepted only when that call would be. So the
console and the API can never disagree.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from ..api.access import allowed, role_of
from ..api.common import ORCH_KEY
from .sessions import Session, csrf_ok, same_origin

Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
SESSIONS_KEY: web.AppKey[Any] = web.AppKey("console_sessions")
HEADERS = {
    # Everything the console loads comes from here; nothing inline, nothing framed.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make a browser send Origin: null on our own forms
    "Cache-Control": "no-store",
}
NAV = (
    ("overview", "Overview", ("GET", "/api/workers")),
    ("workers", "Workers", ("GET", "/api/workers")),
    ("executions", "Executions", ("GET", "/api/executions")),
    ("team", "Team & credentials", ("GET", "/api/credentials")),
    ("dead-letters", "Dead letters", ("GET", "/api/dead-letters")),
)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("dac_runtime.orchestrator.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["when"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "—"
_env.filters["ago"] = lambda t: _duration(time.time() - t) if t else "—"
_env.filters["duration"] = lambda s: _duration(s) if s is not None else "—"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def may(session: Session, method: str, route: str) -> bool:
    return allowed(session.role, method, route)


def render(
    request: web.Request, template: str, session: Session | None, *, status: int = 200, **context: Any
) -> web.Response:
    context.setdefault("note", None)
    page = _env.get_template(template).render(
        session=session,
        role=role_of(session.role) if session else None,
        may=(lambda method, route: may(session, method, route)) if session else (lambda *_: False),
        nav=[item for item in NAV if session and may(session, *item[2])],
        csrf=session.csrf if session else "",
        here=request.path,
        **context,
    )
    return web.Response(text=page, content_type="text/html", status=status, headers=HEADERS)


def refuse(request: web.Request, session: Session | None, status: int, message: str) -> web.Response:
    return render(request, "refused.html", session, status=status, message=message)


def page(read: tuple[str, str] | None = None) -> Callable[[Handler], Callable[[web.Request], Awaitable[Any]]]:
    """A page for a signed-in member whose role may make the API read ``read``."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[Any]]:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await request.app[SESSIONS_KEY].find(request)
            if session is None:
                raise web.HTTPSeeOther("/console/sign-in")
            if read is not None and not may(session, *read):
                return refuse(request, session, 403, f"a {role_of(session.role)} may not see this page")
            return await handler(request, session)

        return guarded

    return wrap


def action(method: str, route: str) -> Callable[[Handler], Callable[[web.Request], Awaitable[Any]]]:
    """A form post: signed in, same origin, the session's CSRF token, and a role the API would let
    make ``method route``."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[Any]]:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await request.app[SESSIONS_KEY].find(request)
            if session is None:
                return refuse(request, None, 401, "sign in first")
            form = await request.post()
            if not same_origin(request) or not csrf_ok(session, form.get("csrf")):  # type: ignore[arg-type]
                request.app[ORCH_KEY].metrics.auth_failures.labels("console_csrf").inc()
                return refuse(request, session, 403, "this form was not sent from this console (CSRF check failed)")
            if not may(session, method, route):
                return refuse(request, session, 403, f"a {role_of(session.role)} may not do this")
            request["form"] = form
            return await handler(request, session)

        return guarded

    return wrap


def back(to: str, note: str = "") -> web.HTTPSeeOther:
    """After a form: to the page, with what happened in the query (post/redirect/get)."""
    return web.HTTPSeeOther(to + (("&" if "?" in to else "?") + "note=" + _quote(note) if note else ""))


def _quote(text: str) -> str:
    return quote(text[:300], safe="")
