"""The team: API keys by member and role (only an owner manages them)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from .access import ALIASES, ROLES
from .common import ORCH_KEY, ApiError, Body, decode_body


class MemberBody(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    role: str = "contributor"


async def list_team(request: web.Request) -> web.Response:
    return web.json_response({"members": request.app[ORCH_KEY].store.list_api_keys()})


async def add_member(request: web.Request) -> web.Response:
    body = await decode_body(request, MemberBody)
    if body.role not in ROLES and body.role not in ALIASES:
        raise ApiError(400, "invalid_body", f"role must be one of {', '.join(ROLES)}")
    body.role = ALIASES.get(body.role, body.role)
    key_id, key = request.app[ORCH_KEY].vault.create_api_key(body.name, body.role)
    return web.json_response({"id": key_id, "name": body.name, "role": body.role, "apiKey": key}, status=201)


async def remove_member(request: web.Request) -> web.Response:
    member_id = request.match_info["id"]
    if member_id == request["api_key"]["id"]:
        raise ApiError(409, "self_removal", "an owner cannot revoke the key it is using")
    if not request.app[ORCH_KEY].vault.revoke_api_key(member_id):
        raise ApiError(404, "not_found", f"no member {member_id}")
    return web.Response(status=204)
