"""A request that only one orchestrator can answer, sent there by whichever received it.

A Claude login runs on a worker, and a worker is connected to one orchestrator: the login's start
goes to an orchestrator that has such a worker, and its callback to the one that started it (the
session id names it by epoch). Behind one address (Fly's proxy, a Kubernetes Service) the caller
cannot choose; so the orchestrator that received the request relays it over the deployment's
private addresses (each orchestrator's advertised URL) with the caller's own credentials, and relays
the answer back. A relayed request is never relayed again.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

#: set on a relayed request, so that it is answered where it lands
HEADER = "X-Dac-Forwarded"


def forwarded(request: web.Request) -> bool:
    return request.headers.get(HEADER) == "1"


async def forward(request: web.Request, base_url: str, timeout_s: float) -> web.Response:
    """Send ``request`` (method, path, body, Authorization) to the orchestrator at ``base_url``; its
    answer as ours. Raises :class:`aiohttp.ClientError` or :class:`TimeoutError` when it cannot."""
    headers = {HEADER: "1", "Content-Type": request.headers.get("Content-Type", "application/json")}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(
            request.method, base_url.rstrip("/") + request.path, data=await request.read(), headers=headers
        ) as answer,
    ):
        body = await answer.read()
        return web.Response(status=answer.status, body=body, content_type=answer.content_type)
