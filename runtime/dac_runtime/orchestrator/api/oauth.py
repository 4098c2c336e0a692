"""Connecting the Claude subscription from the browser: ``authorize`` answers with the URL that a
worker's ``claude setup-token`` printed; ``callback`` takes the ``code#state`` the page showed and
answers with what is now known of the stored token (never the token)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..team.logins import LoginError
from .common import ORCH_KEY, ApiError, Body, decode_body
from .token import token_state


class CallbackBody(Body):
    session: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: What the browser showed after sign-in: ``CODE#STATE``
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


async def authorize(request: web.Request) -> web.Response:
    await decode_body(request, Body, empty_ok=True)
    try:
        started = await request.app[ORCH_KEY].logins.authorize(request["api_key"]["name"])
    except LoginError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response(started, status=201)


async def callback(request: web.Request) -> web.Response:
    body = await decode_body(request, CallbackBody)
    orch = request.app[ORCH_KEY]
    try:
        await orch.logins.callback(body.session, body.code)
    except LoginError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response(token_state(orch.vault))
