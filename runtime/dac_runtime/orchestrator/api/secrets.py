"""The Claude token and the credentials: written here, never read back (names and times only)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from ...records import CredentialName
from ..vault import Vault
from .common import CREDENTIAL_NAMES, ORCH_KEY, ApiError, Body, decode_body, path_value


class SecretBody(Body):
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=65_536)]


class TokenBody(Body):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    #: Unix times, when known (a setup token lives a year from its mint time)
    expires_at: Annotated[float, msgspec.Meta(gt=0)] | None = None
    minted_at: Annotated[float, msgspec.Meta(gt=0)] | None = None


async def put_token(request: web.Request) -> web.Response:
    body = await decode_body(request, TokenBody)
    request.app[ORCH_KEY].vault.set_claude_token(body.token, body.expires_at, body.minted_at)
    return web.Response(status=204)


def token_state(vault: Vault) -> dict[str, Any]:
    """Whether a token is stored, and what is known of its life (never the token)."""
    info = vault.claude_token_info()
    if info is None:
        return {"configured": False}
    return {
        "configured": True,
        "mintedAt": info.minted_at,
        "expiresAt": info.expires_at,
        "expiresEstimated": info.estimated,
        "expired": info.expired(),
        "warning": info.warning(),
    }


async def get_token(request: web.Request) -> web.Response:
    return web.json_response(token_state(request.app[ORCH_KEY].vault))


async def delete_token(request: web.Request) -> web.Response:
    request.app[ORCH_KEY].vault.delete_claude_token()
    return web.Response(status=204)


def _credential_name(request: web.Request) -> str:
    return path_value(request, "name", CredentialName, CREDENTIAL_NAMES)


async def put_credential(request: web.Request) -> web.Response:
    name = _credential_name(request)
    body = await decode_body(request, SecretBody)
    request.app[ORCH_KEY].vault.set_credential(name, body.value)
    return web.Response(status=204)


async def list_credentials(request: web.Request) -> web.Response:
    return web.json_response({"credentials": request.app[ORCH_KEY].vault.list_credentials()})


async def delete_credential(request: web.Request) -> web.Response:
    name = _credential_name(request)
    if not request.app[ORCH_KEY].vault.delete_credential(name):
        raise ApiError(404, "not_found", f"no credential {name}")
    return web.Response(status=204)
