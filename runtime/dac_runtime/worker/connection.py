"""The worker's side of the WebSocket: dial out, authenticate, serve assignments, survive drops.

Frames wait in an outbox until a connection takes them, and every frame about an execution also
stays in a :class:`~.journal.Journal` until the orchestrator acknowledges it. A reconnecting worker
re-announces, in ``hello``, every execution it holds (running, or finished but unacknowledged), sends
the journal again in order, and only then says ``ready``: it takes no new work before its backlog
is through. Heartbeats run on their own task and never wait behind work. SIGTERM drains (finish
the current run, take no new one); a second SIGTERM cancels the run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .. import __version__
from ..protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Accepted,
    Ack,
    Assign,
    Cancel,
    Complete,
    Error,
    Event,
    Heartbeat,
    Hello,
    LoginCode,
    LoginEnd,
    LoginStart,
    ProtocolError,
    Ready,
    Received,
    Rejected,
    Shutdown,
    Stderr,
    Stdout,
    WorkerFrame,
    decode_orchestrator_frame,
    encode,
)
from .executor import Run
from .journal import Journal
from .login import Logins
from .sweep import sweep_runs

log = logging.getLogger("dac.worker")


@dataclass
class WorkerSettings:
    url: str
    token: str = field(repr=False)
    worker_id: str
    command: list[str]
    work_root: Path
    credential_file: Path | None = None
    exit_after_job: bool = False
    #: Leave after this many seconds without an execution (a burst worker whose backlog others took).
    exit_after_idle_s: float | None = None
    #: Names of worker environment variables the operator chose to pass to the agent.
    passthrough: tuple[str, ...] = ()
    #: ``claude setup-token`` here, for connecting the Claude subscription; None: no logins offered.
    login_command: list[str] | None = None
    #: Where this worker runs (DAC_WORKER_PLACE), told to the orchestrator in hello.
    place: str | None = None
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    #: WebSocket pings to the orchestrator this often; no pong within half of it and the socket is
    #: given up (a paused or cut-off orchestrator says nothing, not even a close)
    ping_interval_s: float = 3.0

    @property
    def urls(self) -> list[str]:
        """Every orchestrator this worker may dial (one address in front of several, or a list)."""
        return [u.strip() for u in self.url.split(",") if u.strip()]


#: While it holds a run or a result not yet acknowledged, a worker retries at least this often: the
#: orchestrator keeps such a run for a lease (``DAC_LEASE_MS``) and fails it ``worker_lost`` when
#: nobody brings it back in time, so a long idle-style backoff would turn an outage into lost work.
HOLDING_CAP_S = 3.0
#: Between the orchestrators of one list: the next is tried this soon after one refused (at most).
NEXT_URL_S = 0.2


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2 ** min(attempt, 20))))  # noqa: S311 - jitter, not crypto


class Redial:
    """When to dial again after a connection failed or was lost. The other orchestrators of the list
    are tried at once (one of them is likely up); only a full pass that failed backs off, and briefly
    while the worker holds a run or a result (``holding``)."""

    def __init__(self, urls: int, base: float, cap: float) -> None:
        self.urls, self.base, self.cap = max(1, urls), base, cap
        self.attempt = 0  # full passes over the list that failed
        self.failed = 0  # orchestrators that failed in this pass

    def connected(self) -> None:
        self.attempt = self.failed = 0

    def delay(self, holding: bool) -> float:
        self.failed += 1
        if self.failed < self.urls:
            return random.uniform(0, NEXT_URL_S)  # noqa: S311 - jitter, not crypto
        self.failed = 0
        delay = backoff_delay(self.attempt, self.base, min(self.cap, HOLDING_CAP_S) if holding else self.cap)
        self.attempt += 1
        return delay


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.s = settings
        self._outbox: collections.deque[str] = collections.deque()
        self._outbox_ready = asyncio.Event()
        self.journal = Journal()
        self._clock_offset = 0.0
        self._run: Run | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._draining = False
        self._done = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._heartbeat_interval = 15.0
        self.connected = asyncio.Event()
        self.logins = Logins(settings.login_command, self._queue_now)
        self._idle_from = time.monotonic()
        self._url_turn = 0  # the first URL first: a deployment spreads workers by rotating their lists
        if settings.credential_file and settings.credential_file.exists():
            stored = settings.credential_file.read_text().strip()
            if stored:
                self.s.token = stored

    # --- public ---------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        sweep_runs(self.s.work_root, self.s.worker_id)  # what a killed predecessor of this id left
        watch = asyncio.create_task(self._leave_when_idle()) if self.s.exit_after_idle_s else None
        redial = Redial(len(self.s.urls), self.s.backoff_base, self.s.backoff_cap)
        async with aiohttp.ClientSession() as session:
            while not self._done.is_set():
                try:
                    if await self._session(session):
                        redial.connected()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("connection to orchestrator failed: %s", type(exc).__name__)
                except _Refused as exc:
                    log.error("orchestrator refused this worker: %s", exc)
                self.connected.clear()
                self._url_turn += 1  # the next one in the list: this one went away or refused
                if self._done.is_set():
                    break
                delay = redial.delay(holding=self._run is not None or len(self.journal) > 0)
                log.info("reconnecting in %.1fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._done.wait(), timeout=delay)
        if self._run_task:
            await self._run_task
        if watch is not None:
            watch.cancel()
        await self.logins.close()

    async def _leave_when_idle(self) -> None:
        limit = self.s.exit_after_idle_s or 0.0
        while not self._draining:
            await asyncio.sleep(min(1.0, limit / 4))
            if self._run is None and time.monotonic() - self._idle_from > limit:
                log.info("no execution for %.0f s: leaving", limit)
                self.request_stop()

    def request_stop(self) -> None:
        """First call drains; a second call cancels the running execution."""
        if not self._draining:
            log.info("draining: finishing the current execution, taking no new one")
            self._draining = True
            if self._run is None:
                self._done.set()
        elif self._run is not None:
            log.info("second stop signal: cancelling execution %s", self._run.execution_id)
            self._run.cancel()
        if self._done.is_set() and self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    # --- one connection -------------------------------------------------------------------------

    def _dialled(self) -> str:
        urls = self.s.urls
        return urls[self._url_turn % len(urls)]

    async def _session(self, session: aiohttp.ClientSession) -> bool:
        headers = {"Authorization": f"Bearer {self.s.token}"}
        async with session.ws_connect(
            self._dialled(),
            headers=headers,
            heartbeat=self.s.ping_interval_s,
            max_msg_size=4 * MAX_FRAME_BYTES,
            compress=0,
            timeout=10,
        ) as ws:
            self._ws = ws
            run = self._run
            hello = Hello(
                worker_id=self.s.worker_id,
                version=__version__,
                protocol=PROTOCOL_VERSION,
                capabilities=["stream-json", "persona-events", "resume"]
                + (["setup-token"] if self.s.login_command else []),
                place=self.s.place,
                active_execution_id=run.execution_id if run else None,
                last_seq=run.last_seq if run else None,
                resumes=self.journal.resumes(run.execution_id if run else None),
            )
            await ws.send_str(encode(hello))
            first = await ws.receive(timeout=15)
            if first.type != aiohttp.WSMsgType.TEXT:
                raise _Refused(f"connection closed before ack (code {ws.close_code})")
            ack = decode_orchestrator_frame(first.data)
            if isinstance(ack, Error):
                raise _Refused(f"{ack.code}: {ack.message}")
            if not isinstance(ack, Ack):
                raise _Refused(f"expected ack, got {type(ack).__name__}")
            self._accept_ack(ack)
            # What this connection sends first: the unacknowledged backlog, in order, then ready.
            # Anything else still queued was for the old socket (accepted/rejected/ready), which the
            # resumes in hello supersede.
            self._outbox.clear()
            self._outbox.extend(self.journal.replay())
            if self._run is None and not self._draining:
                self._outbox.append(encode(Ready()))
            self._outbox_ready.set()
            self.connected.set()
            log.info("connected as %s", self.s.worker_id)
            tasks = [asyncio.create_task(self._heartbeats(ws)), asyncio.create_task(self._sender(ws))]
            try:
                await self._receiver(ws)
            finally:
                for task in tasks:
                    task.cancel()
                self._ws = None
        return True

    def _accept_ack(self, ack: Ack) -> None:
        self._heartbeat_interval = ack.heartbeat_interval_ms / 1000
        if ack.server_time is not None:
            self._clock_offset = ack.server_time - time.time()
        if ack.credential:
            self.s.token = ack.credential
            if self.s.credential_file:
                path = self.s.credential_file
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(ack.credential)
                tmp.chmod(0o600)
                tmp.replace(path)

    async def _heartbeats(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            run = self._run
            await ws.send_str(encode(Heartbeat(timestamp=loop.time(), executing=run.execution_id if run else None)))

    async def _sender(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            while self._outbox:
                await ws.send_str(self._outbox[0])
                self._outbox.popleft()  # only after the send succeeded, so a drop loses nothing
            self._outbox_ready.clear()
            await self._outbox_ready.wait()

    async def _receiver(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = decode_orchestrator_frame(message.data)
            except ProtocolError as exc:
                log.warning("ignoring bad frame from orchestrator: %s (%s)", exc.code, exc.message)
                continue
            if isinstance(frame, Assign):
                self._on_assign(frame)
            elif isinstance(frame, Received):
                self.journal.acknowledge(frame.execution_id, frame.seq, frame.final)
            elif isinstance(frame, Cancel):
                if self._run and self._run.execution_id == frame.execution_id:
                    self._run.cancel()
            elif isinstance(frame, Shutdown):
                log.info("orchestrator asked for shutdown: %s", frame.reason)
                self.request_stop()
                if self._run is not None:
                    asyncio.get_running_loop().call_later(frame.grace_period_ms / 1000, self._cancel_run)
            elif isinstance(frame, LoginStart | LoginCode | LoginEnd):
                self.logins.handle(frame)
            elif isinstance(frame, Error):
                log.warning("orchestrator error: %s: %s", frame.code, frame.message)
            if self._done.is_set():
                await ws.close()

    # --- executions -----------------------------------------------------------------------------

    async def _queue(self, frame: WorkerFrame) -> None:
        """The executor's async send: frames wait in the outbox until a connection takes them."""
        self._queue_now(frame)

    def _queue_now(self, frame: WorkerFrame) -> None:
        encoded = encode(frame)
        if isinstance(frame, Stdout | Stderr | Event):
            self.journal.record(frame.execution_id, frame.seq, encoded)
        elif isinstance(frame, Complete):
            self.journal.record(frame.execution_id, None, encoded)
        self._outbox.append(encoded)
        self._outbox_ready.set()

    def _on_assign(self, assign: Assign) -> None:
        late = assign.not_after is not None and time.time() + self._clock_offset > assign.not_after
        if self._run is not None or self._draining or late:
            reason = "expired" if late else "draining" if self._draining else "busy"
            if late:
                log.warning("not starting %s: its assign arrived after the orchestrator gave up", assign.execution_id)
            assign.env.clear()
            self._queue_now(Rejected(execution_id=assign.execution_id, reason=reason))
            return
        self._queue_now(Accepted(execution_id=assign.execution_id))
        self._run = Run(assign, self.s.command, self.s.work_root, self._queue, self.s.passthrough, self.s.worker_id)
        self._run_task = asyncio.get_running_loop().create_task(self._execute(self._run))

    async def _execute(self, run: Run) -> None:
        try:
            complete = await run.execute()
        except Exception as exc:  # a bug here must not leave the worker wedged as busy
            log.exception("execution %s crashed in the worker", run.execution_id)
            complete = Complete(execution_id=run.execution_id, status="failed", reason=f"worker_error: {exc}")
        log.info("execution %s finished: %s", run.execution_id, complete.status)
        self._run = None
        self._idle_from = time.monotonic()
        self._queue_now(complete)
        if self.s.exit_after_job or self._draining:
            self._draining = True
            await self._flush_then_stop()
        else:
            self._queue_now(Ready())

    async def _flush_then_stop(self, seconds: float = 15.0) -> None:
        """Leave once the orchestrator has acknowledged every result (bounded: with no orchestrator to
        tell, a stopping worker still stops, and says what it could not deliver)."""
        try:
            await asyncio.wait_for(self.journal.drained(), timeout=seconds)
        except TimeoutError:
            log.error(
                "stopping with %d unacknowledged result(s): the orchestrator did not confirm them", len(self.journal)
            )
        self._done.set()
        if self._ws is not None:
            await self._ws.close()

    def _cancel_run(self) -> None:
        if self._run is not None:
            self._run.cancel()


class _Refused(Exception):
    pass


def new_worker_id(hostname: str) -> str:
    return f"{hostname}-{secrets.token_hex(3)}"
