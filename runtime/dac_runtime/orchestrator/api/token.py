"""The Claude token: stored here, never read back (only what is known of its life)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from ..team.vault import Vault
from .common import ORCH_KEY, Body, decode_body


class TokenBody(Body):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    #: Unix times, when known (a setup token lives a year from its mint time)
    expires_at: Annotated[float, msgspec.Meta(gt=0)] | None = None
    minted_at: Annotated[float, msgspec.Meta(gt=0)] | None = None


async def put_token(request: web.Request) -> web.Response:
    body = await decode_body(request, TokenBody)
    await request.app[ORCH_KEY].vault.set_claude_token(body.token, body.expires_at, body.minted_at)
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
    await request.app[ORCH_KEY].vault.delete_claude_token()
    return web.Response(status=204)
