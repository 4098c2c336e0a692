"""Which orchestrator of a deployment the client talks to, and the next one when that one goes away.

A deployment with several orchestrators answers the same API from each (they share the store), so
the client holds all their URLs and sticks to one until it stops answering: refused or reset
connections, and a 503 (one draining for its replacement, stepping down, or cut off from the store),
move it to the next. Only what is
safe to send twice is sent again: any request that never reached a server (the connection was
refused), and otherwise only requests that are idempotent (reads, and submissions that carry their
execution id, which the API deduplicates). Each request tries each orchestrator at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx


class ClientError(Exception):
    """The orchestrator refused a request or could not be reached; ``code`` is its error code."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def unreachable(url: str, why: str) -> ClientError:
    return ClientError(f"cannot reach the orchestrator at {url}: {why}")


class Endpoints:
    def __init__(self, urls: str | Sequence[str], headers: dict[str, str], timeout: float) -> None:
        listed = [urls] if isinstance(urls, str) else list(urls)
        self.urls = list(dict.fromkeys(u.rstrip("/") for u in listed if u))
        if not self.urls:
            raise ValueError("a client needs at least one orchestrator URL")
        self._at = 0
        self.http = httpx.AsyncClient(headers=headers, timeout=timeout)

    @property
    def url(self) -> str:
        """The orchestrator requests go to now."""
        return self.urls[self._at]

    def next(self) -> None:
        self._at = (self._at + 1) % len(self.urls)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        for attempt in range(len(self.urls)):
            url, last = self.url, attempt == len(self.urls) - 1
            try:
                response = await self.http.request(method, url + path, **kwargs)
            except httpx.ConnectError as exc:  # never reached a server: safe to send anywhere
                if last:
                    raise unreachable(url, type(exc).__name__) from None
            except httpx.TransportError as exc:
                if last or not idempotent:
                    raise unreachable(url, type(exc).__name__) from None
            else:
                if last or not idempotent or response.status_code != 503:
                    return response
            self.next()
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
