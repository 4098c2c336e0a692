"""Ready means every planned worker has said hello to the orchestrator; every target waits the same way."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from .base import ProviderError

LIVE = {"idle", "executing", "draining"}


async def registered(client: httpx.AsyncClient) -> set[str]:
    try:
        workers = (await client.get("/api/workers")).json()["workers"]
    except (httpx.TransportError, ValueError, KeyError, TypeError):
        return set()
    return {w["workerId"] for w in workers if w["state"] in LIVE}


async def missing_workers(
    url: str, api_key: str, expected: set[str], seconds: float, verify: ssl.SSLContext | bool = True, poll: float = 0.05
) -> list[str]:
    """Wait until every id in ``expected`` has registered; the ones still missing at the deadline.
    A hello counts once seen: a one-job burst worker may have done its job and left before the last
    of its batch says hello."""
    deadline = time.monotonic() + seconds
    seen: set[str] = set()
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10, verify=verify) as client:
        while True:
            seen |= await registered(client)
            if expected <= seen or time.monotonic() >= deadline:
                return sorted(expected - seen)
            await asyncio.sleep(poll)


async def require_registered(
    url: str,
    api_key: str,
    expected: set[str],
    seconds: float,
    why: Callable[[list[str]], Awaitable[tuple[str, Path | None]]] | None = None,
    verify: ssl.SSLContext | bool = True,
    poll: float = 0.05,
) -> None:
    """Wait until every id in ``expected`` is registered; else fail naming the missing ones, with
    ``why(missing)`` adding what the target knows (a log tail, a droplet's state) and a log path."""
    missing = await missing_workers(url, api_key, expected, seconds, verify, poll)
    if not missing:
        return
    detail, log = await why(missing) if why else ("", None)
    shown = ", ".join(missing[:5]) + ("…" if len(missing) > 5 else "")
    message = f"{len(missing)} of {len(expected)} workers did not register within {seconds:.0f} s ({shown}){detail}"
    raise ProviderError(message, log)
