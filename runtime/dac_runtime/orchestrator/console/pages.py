"""The console's pages: what the deployment is doing, read from the same state the API serves."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ...protocol import TERMINAL_STATUSES
from ..api.access import role_of
from ..api.common import ORCH_KEY
from ..api.credentials import assigned_by_credential
from ..api.token import token_state
from .guard import SESSIONS_KEY, may, page, refuse, render
from .sessions import Session, clear_cookie, csrf_ok, same_origin, set_cookie

STARTED = time.time()
STATUSES = ("queued", "dispatched", "running", "completed", "failed", "cancelled", "timed_out")


async def index(request: web.Request) -> web.StreamResponse:
    signed_in = await request.app[SESSIONS_KEY].find(request) is not None
    raise web.HTTPSeeOther("/console/overview" if signed_in else "/console/sign-in")


async def sign_in_form(request: web.Request) -> web.Response:
    return render(request, "sign_in.html", None, error=None)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    orch = request.app[ORCH_KEY]
    if not same_origin(request):
        return refuse(request, None, 403, "this form was not sent from this console")
    made = await request.app[SESSIONS_KEY].sign_in(str(form.get("api_key", "")))
    if made is None:
        orch.metrics.auth_failures.labels("console").inc()
        return render(request, "sign_in.html", None, status=401, error="That API key is not valid here.")
    response = web.HTTPSeeOther("/console/overview")
    set_cookie(request, response, made[0])
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    sessions = request.app[SESSIONS_KEY]
    session = await sessions.find(request)
    form = await request.post()
    if session is not None and (not same_origin(request) or not csrf_ok(session, form.get("csrf"))):  # type: ignore[arg-type]
        return refuse(request, session, 403, "this form was not sent from this console (CSRF check failed)")
    await sessions.sign_out(request)
    response = web.HTTPSeeOther("/console/sign-in")
    clear_cookie(response)
    raise response


@page()
async def overview(request: web.Request, session: Session) -> web.Response:
    orch = request.app[ORCH_KEY]
    now = time.time()
    store = orch.store
    by_window = {}
    for label, since in (("hour", now - 3600), ("day", now - 86400)):
        rows = await store.fetch("SELECT status, COUNT(*) FROM executions WHERE updated_at >= ? GROUP BY status", since)
        by_window[label] = {r[0]: int(r[1]) for r in rows}
    last = await store.fetchrow("SELECT id, status, updated_at FROM executions ORDER BY created_at DESC LIMIT 1")
    return render(
        request,
        "overview.html",
        session,
        kafka_down=orch.kafka.why_down(),
        workers=orch.registry.counts(),
        uptime=now - STARTED,
        last=dict(last) if last else None,
        by_window=by_window,
        statuses=STATUSES,
        token=token_state(orch.vault),
        alarms=orch.alarms.current(now),
    )


@page(("GET", "/api/workers"))
async def workers(request: web.Request, session: Session) -> web.Response:
    listed = worker_rows(request)
    return render(request, "workers.html", session, workers=listed, initial=json.dumps(listed))


def worker_rows(request: web.Request) -> list[dict[str, Any]]:
    pool = request.app[ORCH_KEY].registry.pool
    return [w.describe() for w in sorted(pool.workers.values(), key=lambda w: w.worker_id)]


@page(("GET", "/api/executions"))
async def executions(request: web.Request, session: Session) -> web.Response:
    orch = request.app[ORCH_KEY]
    status, persona, member = (request.query.get(k) or None for k in ("status", "persona", "member"))
    # Only the filters chosen become conditions: an untyped "? IS NULL" has no type on PostgreSQL.
    chosen = {"status": status, "persona_id": persona, "submitted_by": member}
    where = " AND ".join(f"{column} = ?" for column, value in chosen.items() if value is not None) or "1 = 1"
    columns = "id, persona_id, status, attempt, worker_id, duration_ms, usage, reason, created_at, submitter"
    query = f"SELECT {columns} FROM executions WHERE {where} ORDER BY created_at DESC LIMIT 200"  # noqa: S608
    rows = await orch.store.fetch(query, *(value for value in chosen.values() if value is not None))
    personas = [r[0] for r in await orch.store.fetch("SELECT DISTINCT persona_id FROM executions ORDER BY 1 LIMIT 500")]
    members = await orch.store.fetch(
        "SELECT DISTINCT submitted_by, submitter FROM executions WHERE submitted_by IS NOT NULL ORDER BY 2 LIMIT 500"
    )
    return render(
        request,
        "executions.html",
        session,
        rows=[_row(r) for r in rows],
        statuses=STATUSES,
        personas=personas,
        members=[tuple(m) for m in members],
        chosen={"status": status, "persona": persona, "member": member},
    )


def _row(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["usage"] = json.loads(item["usage"]) if item["usage"] else None
    return item


@page(("GET", "/api/executions/{id}"))
async def execution(request: web.Request, session: Session) -> web.Response:
    orch = request.app[ORCH_KEY]
    row = await orch.store.get_execution(request.match_info["id"])
    if row is None:
        return refuse(request, session, 404, "no such execution")
    item = dict(row)
    item["usage"] = json.loads(item["usage"]) if item["usage"] else None
    item["credentials"] = json.loads(item["given_credentials"]) if item["given_credentials"] else []
    return render(
        request, "execution.html", session, x=item, terminal=item["status"] in TERMINAL_STATUSES, note=_note(request)
    )


@page(("GET", "/api/credentials"))
async def team(request: web.Request, session: Session) -> web.Response:
    return await team_page(request, session, _note(request))


async def team_page(
    request: web.Request, session: Session, note: str | None, invite: str | None = None
) -> web.Response:
    """Members and invites (for those who may read them), the credentials, and a new invite's connect
    string when one was just made (shown in this answer only, never put in a URL)."""
    orch = request.app[ORCH_KEY]
    return render(
        request,
        "team.html",
        session,
        members=await orch.store.list_api_keys() if may(session, "GET", "/api/team") else None,
        invites=await orch.invites.all() if may(session, "GET", "/api/invites") else None,
        credentials=orch.credentials.describe(session.key, assigned_by_credential(request)),
        note=note,
        invite=invite,
        me=session.key["id"],
        role_name=role_of,
    )


@page(("GET", "/api/dead-letters"))
async def dead_letters(request: web.Request, session: Session) -> web.Response:
    state = request.query.get("state") or None
    letters, counts = await request.app[ORCH_KEY].dead_letters.page(
        state if state in ("open", "retried", "discarded") else None, 200
    )
    return render(
        request, "dead_letters.html", session, letters=letters, counts=counts, state=state, note=_note(request)
    )


def _note(request: web.Request) -> str | None:
    note = request.query.get("note")
    return note[:300] if note else None
