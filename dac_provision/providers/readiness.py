"""Ready means every planned worker has said hello to the orchestrator; every target waits the same way."""

from __future__ import annotations

import asyncio
import ssl
import time

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
    """Wait until every id in ``expected`` is registered; the ones still missing at the deadline."""
    deadline = time.monotonic() + seconds
    seen: set[str] = set()
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10, verify=verify) as client:
        while True:
            seen = await registered(client)
            if expected <= seen or time.monotonic() >= deadline:
                return sorted(expected - seen)
            await asyncio.sleep(poll)


def not_registered(missing: list[str], expected: int, seconds: float, why: str = "") -> ProviderError:
    shown = ", ".join(missing[:5]) + ("…" if len(missing) > 5 else "")
    return ProviderError(f"{len(missing)} of {expected} workers did not register within {seconds:.0f} s ({shown}){why}")
