"""What both cloud emulators share: an HTTPS server on 127.0.0.1 in its own thread, injectable faults
and latency, and the spec check of every request and response.

A subclass lists its routes (``table``) and says how its cloud spells an error (``error``). A request
the spec rejects gets a 400 here, as it would there, and every violation is kept for the test to
assert on; so is every call, so a test can count what a client sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from .spec_check import SpecChecker
from .tls import TLS

Handler = Callable[..., web.Response]


@dataclass
class Fault:
    method: str
    path: str  # regular expression, matched against the whole path
    status: int
    times: int = 1
    skip: int = 0  # let this many matching calls through first
    retry_after: float | None = None
    #: Hold the call this long and then drop the connection without an answer (a timeout), instead of a status.
    hang: float = 0.0
    #: Carry the call out, then answer with the error anyway (a create left in doubt).
    applied: bool = False
    seen: int = 0


class Emulator:
    """Subclasses set ``spec_file``/``server`` and implement ``table`` and ``error``."""

    spec_file: Path
    server: str
    #: Error statuses a cloud really sends but its spec leaves out, checked against this schema instead.
    error_schema: str | None = None

    def __init__(self, latency: float = 0.0, tls: TLS | None = None) -> None:
        self.latency = latency
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []
        self.checker = SpecChecker(self.spec_file, self.server, error_schema=self.error_schema)
        self.lock = threading.RLock()
        self.tls = tls or TLS()
        self.url = ""

    # --- for subclasses -------------------------------------------------------------------------

    def table(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def error(self, status: int, message: str, **extra: Any) -> web.Response:
        raise NotImplementedError

    def not_found(self) -> web.Response:
        return self.error(404, "not found")

    def admit(self, request: web.Request) -> web.Response | None:
        """A refusal before the call is carried out (a spent quota), or None to go on."""
        return None

    def stamp(self, response: web.StreamResponse) -> None:
        """Headers the cloud puts on every answer, errors included."""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Emulator:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self.loop = asyncio.new_event_loop()
        app = web.Application(middlewares=[self._middleware], client_max_size=4 << 20)
        app.router.add_route("*", "/{tail:.*}", self._route)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.tls.server_context())
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"https://127.0.0.1:{port}"
        ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    # --- plumbing -------------------------------------------------------------------------------

    def _fault(self, request: web.Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == request.method and re.fullmatch(fault.path, request.path):
                    fault.seen += 1
                    if fault.skip < fault.seen <= fault.skip + fault.times:
                        return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        response = await self._answer(request, handler)
        self.stamp(response)
        return response

    async def _answer(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        with self.lock:
            self.calls.append((request.method, request.path))
        if self.latency:
            await asyncio.sleep(self.latency)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return self.error(401, "Unable to authenticate you")
        refused = self.admit(request)
        if refused is not None:
            return refused
        fault = self._fault(request)
        if fault is not None:
            if fault.hang:
                await asyncio.sleep(fault.hang)
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            if fault.applied:
                await handler(request)
            return self.error(fault.status, f"injected {fault.status}", headers=extra)
        problem = self.checker.check_request(request.method, request.path, request.query_string, headers, body)
        if problem:
            return self.error(400, problem)
        response = await handler(request)
        self.stamp(response)
        payload = response.body if isinstance(response, web.Response) and response.body else b""
        self.checker.check_response(
            request.method,
            request.path,
            request.query_string,
            headers,
            body,
            response.status,
            payload,
            dict(response.headers),
        )
        return response

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path.rstrip("/"), request.method
        raw = await request.read()
        body = json.loads(raw) if raw else None
        routes = self.table()
        for pattern, verb, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                with self.lock:
                    result = handler(request, body, *match.groups())
                if asyncio.iscoroutine(result):
                    return await result
                return result
        return self.not_found()

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop thread (tests use it to poke at state safely)."""
        return asyncio.run_coroutine_threadsafe(_call(fn), self.loop).result(10)


async def _call(fn: Callable[[], Any]) -> Any:
    return fn()
