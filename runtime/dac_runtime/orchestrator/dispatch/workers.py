"""The worker WebSocket endpoint and the registry of connected workers.

A worker authenticates the upgrade with a bearer token (a registration token, exchanged on the
first ``hello`` for a per-worker credential, or that credential). A reconnect with the same worker id
supersedes the stale socket. Every frame is validated; a bad one is answered with an ``error`` frame
and counted, and the connection carries on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web

from ...protocol import (
    MAX_FRAME_BYTES,
    Ack,
    Error,
    Heartbeat,
    Hello,
    LoginFailed,
    LoginToken,
    LoginUrl,
    ProtocolError,
    Ready,
    Resume,
    check_protocol,
    decode_worker_frame,
    encode,
)
from ..bearer import bearer_token
from .pool import Pool, WorkerConn

if TYPE_CHECKING:
    from ..config import Settings
    from ..ops.capacity import Capacity
    from ..ops.metrics import Metrics
    from ..store import Store
    from ..team.logins import Logins
    from ..team.vault import Vault
    from .dispatcher import Dispatcher

log = logging.getLogger("dac.orchestrator.workers")


class WorkerRegistry:
    def __init__(
        self, settings: Settings, store: Store, vault: Vault, metrics: Metrics, pool: Pool, capacity: Capacity
    ) -> None:
        self.settings, self.store, self.vault, self.metrics = settings, store, vault, metrics
        self.pool, self.capacity = pool, capacity
        #: what a worker's frames drive, set by the composition root once they exist (each needs this
        #: registry's pool): its runs, and the subscription connect
        self.dispatcher: Dispatcher
        self.logins: Logins
        self.acting: Callable[[], bool] = lambda: True
        #: registration token hash -> distinct worker ids it has registered
        self._registered: dict[str, int] = {}
        #: worker id -> connection (the pool's own map; change it only through the pool)
        self.workers = self.pool.workers
        self.has_idle = self.pool.has_idle
        self.wait_idle = self.pool.wait_idle
        self.take_idle = self.pool.take_idle
        self.counts = self.pool.counts

    async def reap(self) -> None:
        """Close sockets of workers silent for longer than the heartbeat timeout."""
        timeout = self.settings.heartbeat_timeout_ms / 1000
        while True:
            await asyncio.sleep(min(timeout / 4, 5.0))
            now = time.monotonic()
            for worker in list(self.workers.values()):
                if worker.state != "offline" and now - worker.last_seen > timeout:
                    log.warning("worker %s missed heartbeats for %.0fs: marking offline", worker.worker_id, timeout)
                    worker.state = "offline"
                    await worker.ws.close(code=4000, message=b"heartbeat timeout")
                elif worker.state == "offline" and now - worker.last_seen > 3600:
                    self.pool.remove(worker)

    # --- endpoint -------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.acting():
            return web.json_response(
                {"error": "stepping_down", "message": "this orchestrator is stepping down: dial another"}, status=503
            )
        vault = self.vault
        token = bearer_token(request)
        token_row = await vault.check_worker_token(token) if token else None
        if token_row is None:
            self.metrics.auth_failures.labels("worker").inc()
            log.warning("refused a worker connection from %s: bad or missing token", request.remote)
            return web.json_response({"error": "unauthorized", "message": "invalid worker token"}, status=401)
        ws = web.WebSocketResponse(max_msg_size=4 * MAX_FRAME_BYTES, compress=False, heartbeat=None)
        await ws.prepare(request)
        hello = await self._read_hello(ws)
        if hello is None:
            await ws.close()
            return ws
        credential = None
        if token_row["kind"] == "worker" and token_row["worker_id"] != hello.worker_id:
            await self._refuse(ws, "token_mismatch", "this credential belongs to another worker id")
            return ws
        if token_row["kind"] == "registration":
            refusal = await self._registration_refusal(hello.worker_id, token_row["hash"])
            if refusal is not None:
                await self._refuse(ws, *refusal)
                return ws
            if not await vault.spend_registration(token):
                await self._refuse(ws, "token_spent", "registration token has no uses left")
                return ws
            credential = await vault.issue_worker_credential(hello.worker_id, token_row["hash"])
        conn = await self._register(hello, ws)
        ack = Ack(
            worker_id=conn.worker_id,
            session_token=secrets.token_urlsafe(16),
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            credential=credential,
            server_time=time.time(),
        )
        await conn.send(ack)
        if credential is None:  # only a worker's own credential takes its executions back
            resumes = hello.resumes
            if not resumes and hello.active_execution_id:  # a worker from before resumes
                resumes = [Resume(execution_id=hello.active_execution_id)]
            await self.dispatcher.resume(conn, resumes)
        log.info("worker %s connected (version %s)", conn.worker_id, conn.version)
        try:
            await self._serve(conn)
        finally:
            self.capacity.closed(conn.time_row)
            if not conn.superseded:
                # A worker that closed its socket normally with nothing running has left for good
                # (drained, scaled down); keeping it listed as offline would only clutter the pool.
                left = conn.state != "offline" and conn.execution_id is None and ws.close_code == WSCloseCode.OK
                conn.state = "offline"
                self.dispatcher.worker_lost(conn)
                if left:
                    self.pool.remove(conn)
                log.info("worker %s %s", conn.worker_id, "left" if left else "disconnected")
        return ws

    async def _registration_refusal(self, worker_id: str, registration_hash: str) -> tuple[str, str] | None:
        """Why a registration token may not register ``worker_id`` now, or ``None``.

        A registration token proves only that the machine was meant to join, not which worker it is:
        it may not displace a connected worker's socket (only that worker's credential may), and one
        token registers at most ``registration_max_workers`` distinct ids. An id whose worker is
        offline may be registered again (a replaced machine of the same name); its old credential is
        revoked, and the new session does not inherit its executions.
        """
        current = self.workers.get(worker_id)
        if current is not None and current.state != "offline":
            return "worker_id_in_use", f"worker {worker_id} is connected; only its own credential may replace it"
        cap = self.settings.registration_max_workers
        store = self.store
        if await store.has_worker_credential(worker_id):
            return None
        if registration_hash not in self._registered:  # counted once from the store, then kept here
            self._registered[registration_hash] = await store.ids_registered_by(registration_hash)
        if self._registered[registration_hash] >= cap:
            return "registration_cap", f"this registration token has registered its limit of {cap} workers"
        self._registered[registration_hash] += 1  # the caller registers it next (a refusal after this
        return None  # only errs towards refusing sooner, never towards the cap being passed)

    async def _read_hello(self, ws: web.WebSocketResponse) -> Hello | None:
        try:
            message = await ws.receive(timeout=15)
        except TimeoutError:
            await self._refuse(ws, "hello_timeout", "no hello within 15s")
            return None
        if message.type != WSMsgType.TEXT:
            return None
        try:
            hello = decode_worker_frame(message.data)
            if not isinstance(hello, Hello):
                raise ProtocolError("expected_hello", f"first frame must be hello, got {type(hello).__name__}")
            check_protocol(hello)
        except ProtocolError as exc:
            await self._refuse(ws, exc.code, exc.message)
            return None
        return hello

    async def _refuse(self, ws: web.WebSocketResponse, code: str, message: str) -> None:
        log.warning("refusing worker: %s: %s", code, message)
        self.metrics.frame_errors.labels(code).inc()
        await ws.send_str(encode(Error(code=code, message=message)))
        await ws.close(code=4001, message=code.encode())

    async def _register(self, hello: Hello, ws: web.WebSocketResponse) -> WorkerConn:
        old = self.workers.get(hello.worker_id)
        if old is not None and old.state != "offline":
            log.info("worker %s reconnected: superseding its stale socket", hello.worker_id)
            old.superseded = True
            asyncio.get_running_loop().create_task(old.ws.close(code=4002, message=b"superseded"))
        conn = WorkerConn(hello.worker_id, hello.version, ws)
        conn.capabilities = frozenset(hello.capabilities)
        conn.place = hello.place
        self.pool.add(conn)  # before the first await: a second hello of this id finds it
        conn.time_row = await self.capacity.opened(conn.worker_id, conn.place)
        return conn

    async def _serve(self, conn: WorkerConn) -> None:
        async for message in conn.ws:
            if not self.acting():  # stepping down: the worker's journal keeps what it sent, for the next one
                break
            conn.last_seen = time.monotonic()
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.BINARY:
                    await self._frame_error(conn, ProtocolError("binary_frame", "frames must be JSON text"))
                continue
            try:
                frame = decode_worker_frame(message.data)
            except ProtocolError as exc:
                await self._frame_error(conn, exc)
                continue
            if isinstance(frame, Heartbeat):
                if frame.executing and frame.executing == conn.execution_id:
                    await self.dispatcher.acknowledge_output(conn, frame.executing)
                continue
            if isinstance(frame, Ready):
                if conn.execution_id is None:
                    self.pool.mark_idle(conn)
                continue
            if isinstance(frame, LoginUrl | LoginToken | LoginFailed):
                self.logins.on_frame(conn, frame)
                continue
            if isinstance(frame, Hello):
                await self._frame_error(conn, ProtocolError("duplicate_hello", "hello was already received"))
                continue
            await self.dispatcher.on_frame(conn, frame)

    async def _frame_error(self, conn: WorkerConn, exc: ProtocolError) -> None:
        self.metrics.frame_errors.labels(exc.code).inc()
        log.warning("bad frame from worker %s: %s: %s", conn.worker_id, exc.code, exc.message[:200])
        await conn.send(Error(code=exc.code, message=exc.message[:500]))
