"""The team: members (API keys by role) and invites. Owners manage both; joining is the one call made
without a key, since the invite's one-time code is what proves the caller was invited."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..team.invites import InviteError, connect_string
from ..team.members import CannotRemove
from ..team.members import remove_member as remove_member_now
from .access import ALIASES, ROLES
from .common import ORCH_KEY, ApiError, Body, decode_body

MemberName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
MAX_INVITE_TTL_S = 90 * 86400


class MemberBody(Body):
    name: MemberName
    role: str = "contributor"


class InviteBody(Body):
    role: str = "contributor"
    #: Who it is for (shown in the team list); the member may give their own name when joining
    name: MemberName | None = None
    #: Seconds until it can no longer be redeemed (default 7 days, at most 90)
    expires_in: Annotated[int, msgspec.Meta(gt=0, le=MAX_INVITE_TTL_S)] = 7 * 86400


class JoinBody(Body):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: MemberName | None = None


def _role(role: str) -> str:
    if role not in ROLES and role not in ALIASES:
        raise ApiError(400, "invalid_body", f"role must be one of {', '.join(ROLES)}")
    return ALIASES.get(role, role)


async def list_team(request: web.Request) -> web.Response:
    return web.json_response({"members": await request.app[ORCH_KEY].store.list_api_keys()})


async def add_member(request: web.Request) -> web.Response:
    body = await decode_body(request, MemberBody)
    role = _role(body.role)
    key_id, key = await request.app[ORCH_KEY].vault.create_api_key(body.name, role)
    return web.json_response({"id": key_id, "name": body.name, "role": role, "apiKey": key}, status=201)


async def remove_member(request: web.Request) -> web.Response:
    """Revoke a member's key (it fails from the next request on) and flag what they contributed."""
    orch = request.app[ORCH_KEY]
    member_id = request.match_info["id"]
    try:
        flagged = await remove_member_now(orch.store, orch.vault, orch.credentials, member_id, request["api_key"])
    except CannotRemove as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response({"id": member_id, "flaggedCredentials": flagged})


def origin(request: web.Request) -> str:
    """The URL this orchestrator was reached at (behind a TLS-terminating proxy, as the client saw it)."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme}://{request.host}"


async def create_invite(request: web.Request) -> web.Response:
    body = await decode_body(request, InviteBody, empty_ok=True)
    invite, code = await request.app[ORCH_KEY].invites.create(
        _role(body.role), request["api_key"]["id"], body.name, body.expires_in
    )
    created = {**invite, "code": code, "connectString": connect_string(origin(request), code)}
    return web.json_response(created, status=201)


async def list_invites(request: web.Request) -> web.Response:
    return web.json_response({"invites": await request.app[ORCH_KEY].invites.all()})


async def withdraw_invite(request: web.Request) -> web.Response:
    invites = request.app[ORCH_KEY].invites
    invite_id = request.match_info["id"]
    if await invites.get(invite_id) is None:
        raise ApiError(404, "not_found", f"no invite {invite_id}")
    if not await invites.revoke(invite_id):
        raise ApiError(409, "not_open", f"invite {invite_id} was already used or withdrawn")
    return web.Response(status=204)


async def join(request: web.Request) -> web.Response:
    """Redeem an invite's code for a new API key, shown this once."""
    orch = request.app[ORCH_KEY]
    body = await decode_body(request, JoinBody)
    try:
        member = await orch.invites.redeem(body.code, body.name)
    except InviteError as exc:
        orch.metrics.auth_failures.labels("join").inc()
        raise ApiError(403, "invite_refused", str(exc)) from None
    return web.json_response(member, status=201)
