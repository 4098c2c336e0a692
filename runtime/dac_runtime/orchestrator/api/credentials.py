"""Contributed credentials: anyone who runs executions may contribute one and replace or revoke their
own; an owner may revoke or adopt any. Values go in and never come out: reads show who contributed
what, for which service and personas, when it was last used, and its status."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from ...records import CredentialName
from ..team.credentials import NotYours, Unavailable
from .common import CREDENTIAL_NAMES, ORCH_KEY, ApiError, Body, decode_body, path_value

Short = Annotated[str, msgspec.Meta(max_length=200)]


class CredentialBody(Body):
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=65_536)]
    #: What it is for (``github``, ``openai``...): shown to the team
    service: Annotated[str, msgspec.Meta(max_length=64)] = ""
    #: Non-secret facts the team may see (account, scopes...): never the value
    metadata: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], Short], msgspec.Meta(max_length=20)] = {}
    #: Unix time it stops working, when known: ``expiring`` 30 days before
    expires_at: Annotated[float, msgspec.Meta(gt=0)] | None = None


def credential_name(request: web.Request) -> str:
    return path_value(request, "name", CredentialName, CREDENTIAL_NAMES)


def assigned_by_credential(request: web.Request) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for persona in request.app[ORCH_KEY].personas.all():
        for name in persona.credentials:
            by_name.setdefault(name, []).append(persona.persona_id)
    return by_name


async def list_credentials(request: web.Request) -> web.Response:
    listed = request.app[ORCH_KEY].credentials.describe(request["api_key"], assigned_by_credential(request))
    return web.json_response({"credentials": listed})


async def put_credential(request: web.Request) -> web.Response:
    name = credential_name(request)
    body = await decode_body(request, CredentialBody)
    try:
        created = await request.app[ORCH_KEY].credentials.put(
            name, body.value, request["api_key"], body.service, body.metadata, body.expires_at
        )
    except NotYours as exc:
        raise ApiError(403, "not_yours", str(exc)) from None
    finally:
        body.value = ""  # drop our reference to the plain value at once
    return web.Response(status=201 if created else 204)


async def delete_credential(request: web.Request) -> web.Response:
    name = credential_name(request)
    try:
        outcome = await request.app[ORCH_KEY].credentials.revoke(name, request["api_key"])
    except KeyError:
        raise ApiError(404, "not_found", f"no credential {name}") from None
    except NotYours as exc:
        raise ApiError(403, "not_yours", str(exc)) from None
    if outcome == "tombstoned":
        return web.json_response({"name": name, "status": "owner_revoked"})
    return web.Response(status=204)


async def adopt_credential(request: web.Request) -> web.Response:
    name = credential_name(request)
    credentials = request.app[ORCH_KEY].credentials
    if credentials.get(name) is None:
        raise ApiError(404, "not_found", f"no credential {name}")
    try:
        await credentials.adopt(name, request["api_key"])
    except Unavailable as exc:
        raise ApiError(409, "revoked", str(exc)) from None
    return web.Response(status=204)


def require_own(request: web.Request, name: str) -> dict[str, Any]:
    """The credential's row, when the caller may hand it to a persona (their own, or they own the team)."""
    row = request.app[ORCH_KEY].credentials.get(name)
    if row is None:
        raise ApiError(404, "no_credential", f"no credential {name} to assign (set it first)")
    if not request.app[ORCH_KEY].credentials.may_change(name, request["api_key"]):
        raise ApiError(403, "not_yours", f"{name} was contributed by {row['contributor']}; only they or an owner")
    return row
