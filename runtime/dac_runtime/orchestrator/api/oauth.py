"""Connecting the Claude subscription from the browser: ``authorize`` answers with the URL that a
worker's ``claude setup-token`` printed; ``callback`` takes the ``code#state`` the page showed and
answers with what is now known of the stored token (never the token)."""

from __future__ import annotations

from typing import Annotated

import aiohttp
import msgspec
from aiohttp import web

from ..cluster.forward import forward, forwarded
from ..team.logins import ANSWER_WAIT_S, LoginError
from .common import ORCH_KEY, ApiError, Body, decode_body
from .token import token_state


class CallbackBody(Body):
    session: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: What the browser showed after sign-in: ``CODE#STATE``
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


async def authorize(request: web.Request) -> web.Response:
    await decode_body(request, Body, empty_ok=True)
    orch = request.app[ORCH_KEY]
    try:
        started = await orch.logins.authorize(request["api_key"]["name"])
    except LoginError as exc:
        # No worker here can run it: a peer's may (several orchestrators behind one address).
        peer = orch.deployment.login_peer() if exc.code == "no_login_worker" and not forwarded(request) else None
        if peer is None:
            raise ApiError(exc.status, exc.code, exc.message) from None
        return await _relay(request, peer)
    return web.json_response(started, status=201)


async def callback(request: web.Request) -> web.Response:
    body = await decode_body(request, CallbackBody)
    orch = request.app[ORCH_KEY]
    if not orch.logins.holds(body.session) and not forwarded(request):
        # Started on a peer (its epoch is in the session id): finished there, on its worker.
        epoch = orch.logins.epoch_of(body.session)
        peer = orch.deployment.url_of(epoch) if epoch != orch.membership.epoch else None
        if peer is not None:
            return await _relay(request, peer)
    try:
        await orch.logins.callback(body.session, body.code)
    except LoginError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response(token_state(orch.vault))


async def _relay(request: web.Request, peer: str) -> web.Response:
    try:
        return await forward(request, peer, ANSWER_WAIT_S + 10)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(
            502, "peer_unreachable", f"the orchestrator holding this login did not answer: {type(exc).__name__}"
        ) from None
