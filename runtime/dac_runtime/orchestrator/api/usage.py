"""Usage: executions, attempts, time, tokens and cost per member, persona or day."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from ..ops.usage import GROUPS, usage
from .common import ORCH_KEY, ApiError


def query_when(text: str | None, default: float, name: str) -> float:
    """Unix seconds, or an ISO date/time (UTC unless it says otherwise)."""
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be Unix seconds or an ISO date/time, not {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


async def get_usage(request: web.Request) -> web.Response:
    """``?from=&to=&groupBy=member|persona|day``: executions that ended in [from, to)."""
    query = request.query
    group_by = query.get("groupBy", "member")
    if group_by not in GROUPS:
        raise ApiError(400, "bad_request", f"groupBy must be one of {', '.join(GROUPS)}")
    end = query_when(query.get("to"), time.time() + 1, "to")
    start = query_when(query.get("from"), 0.0, "from")
    if start >= end:
        raise ApiError(400, "bad_request", "from must be before to")
    body = await usage(request.app[ORCH_KEY].store, start, end, group_by)
    return web.json_response({"from": start, "to": end, "groupBy": group_by, **body})
