"""Server-sent events for the console: the workers table as it changes, an execution's output as the
agent writes it. Both are bounded by the connection: they end when the browser goes away."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ..api.executions import stream_execution
from .guard import page
from .pages import worker_rows
from .sessions import Session

TICK_S = 0.5
KEEPALIVE_S = 15.0


@page(("GET", "/api/workers"))
async def workers(request: web.Request, session: Session) -> web.StreamResponse:
    """The workers, sent whenever they differ from what was sent last (checked twice a second)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    sent, quiet = "", 0.0
    while True:
        now = json.dumps(worker_rows(request), separators=(",", ":"))
        if now != sent:
            await response.write(f"event: workers\ndata: {now}\n\n".encode())
            sent, quiet = now, 0.0
        elif quiet >= KEEPALIVE_S:
            await response.write(b": keepalive\n\n")
            quiet = 0.0
        await asyncio.sleep(TICK_S)
        quiet += TICK_S


@page(("GET", "/api/executions/{id}/stream"))
async def execution(request: web.Request, session: Session) -> web.StreamResponse:
    """The API's own stream of the execution (replay, then live), under the console's session."""
    return await stream_execution(request)
