"""The console's forms: each one is the API call it names, made with the signed-in member's key, so
the same rules and the same code decide it. The answer comes back as a note on the page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...protocol import TERMINAL_STATUSES
from ..api.access import ROLES
from ..api.common import ORCH_KEY
from ..api.team import origin
from ..refusals import Refused
from ..team import members
from ..team.credentials import NotYours
from ..team.invites import connect_string
from .guard import action, back, may
from .pages import team_page
from .sessions import Session


@action("POST", "/api/executions/{id}/cancel")
async def cancel(request: web.Request, session: Session) -> web.StreamResponse:
    orch = request.app[ORCH_KEY]
    execution_id = request.match_info["id"]
    row = await orch.store.get_execution(execution_id)
    where = f"/console/executions/{execution_id}"
    if row is None:
        raise back("/console/executions", "no such execution")
    if row["status"] in TERMINAL_STATUSES:
        raise back(where, f"it had already ended: {row['status']}")
    await orch.dispatcher.cancel(execution_id)
    raise back(where, "cancelling")


@action("POST", "/api/dead-letters/retry")
async def dead_letters(request: web.Request, session: Session) -> web.StreamResponse:
    """Retry or discard the ticked dead letters (``do`` says which; discard needs the owner's right)."""
    form = request["form"]
    ids = [str(i) for i in form.getall("id", [])][:100]
    orch = request.app[ORCH_KEY]
    if not ids:
        raise back("/console/dead-letters", "tick at least one")
    if form.get("do") == "discard":
        if not may(session, "POST", "/api/dead-letters/discard"):
            raise back("/console/dead-letters", "only an owner may discard")
        try:
            await orch.dead_letters.discard(ids, session.key)
        except Refused as exc:
            raise back("/console/dead-letters", exc.message) from None
        raise back("/console/dead-letters", f"{len(ids)} discarded")
    said = []
    for letter_id in ids:
        try:
            new_id = await orch.dead_letters.retry(letter_id, orch.submitter.submit, session.key)
            said.append(f"{letter_id}: retried as {new_id}")
        except Refused as exc:
            said.append(f"{letter_id}: {exc.message}")
    raise back("/console/dead-letters", "; ".join(said))


@action("POST", "/api/invites")
async def invite(request: web.Request, session: Session) -> web.StreamResponse:
    form: Any = request["form"]
    role = str(form.get("role", "contributor"))
    if role not in ROLES:
        raise back("/console/team", f"role must be one of {', '.join(ROLES)}")
    name = str(form.get("name", "")).strip()[:100] or None
    _, code = await request.app[ORCH_KEY].invites.create(role, session.key["id"], name, 7 * 86400)
    return await team_page(request, session, "invite made: send it once", connect_string(origin(request), code))


@action("DELETE", "/api/team/{id}")
async def remove_member(request: web.Request, session: Session) -> web.StreamResponse:
    orch = request.app[ORCH_KEY]
    try:
        flagged = await members.remove_member(
            orch.store, orch.vault, orch.credentials, request.match_info["id"], session.key
        )
    except members.CannotRemove as exc:
        raise back("/console/team", exc.message) from None
    raise back("/console/team", f"{request.match_info['id']} revoked; {flagged} credential(s) flagged")


@action("DELETE", "/api/credentials/{name}")
async def revoke_credential(request: web.Request, session: Session) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        outcome = await request.app[ORCH_KEY].credentials.revoke(name, session.key)
    except KeyError:
        raise back("/console/team", f"no credential {name}") from None
    except NotYours as exc:
        raise back("/console/team", str(exc)) from None
    raise back("/console/team", f"{name} {'revoked (kept as owner_revoked)' if outcome == 'tombstoned' else 'removed'}")
