"""For a scaling controller: the demand signals, the one-controller lease, and worker time for cost."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from aiohttp import web

from .common import ORCH_KEY, ApiError, Body, decode_body
from .usage import query_when


class LeaseBody(Body):
    #: Who holds it (a controller's name and process), shown to the others it keeps out
    holder: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    ttl_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0


async def get_capacity(request: web.Request) -> web.Response:
    orchestrator = request.app[ORCH_KEY]
    await orchestrator.intake.refresh_lag(0.25)  # a backlog seen when it forms, not a period later
    return web.json_response(await orchestrator.capacity.signals(orchestrator.deployment))


async def take_lease(request: web.Request) -> web.Response:
    body = await decode_body(request, LeaseBody)
    capacity = request.app[ORCH_KEY].capacity
    lease = await capacity.take(body.holder, body.ttl_seconds)
    if lease is None:
        held = await capacity.held()
        raise ApiError(409, "lease_held", f"another controller holds the scaling lease: {held and held.holder}")
    return web.json_response({"holder": lease.holder, "expiresAt": lease.expires_at})


async def release_lease(request: web.Request) -> web.Response:
    body = await decode_body(request, LeaseBody)
    if not await request.app[ORCH_KEY].capacity.release(body.holder):
        raise ApiError(409, "not_holder", f"{body.holder} does not hold the scaling lease")
    return web.Response(status=204)


async def get_worker_time(request: web.Request) -> web.Response:
    """Connected worker-seconds by where workers ran, in [from, to) (default: the last 30 days)."""
    now = time.time()
    start = query_when(request.query.get("from"), now - 30 * 86400, "from")
    end = query_when(request.query.get("to"), now, "to")
    if end <= start:
        raise ApiError(400, "bad_request", "to must be after from")
    by_place = await request.app[ORCH_KEY].capacity.worker_seconds(start, end)
    return web.json_response({"from": start, "to": end, "byPlace": by_place})
