"""The pool of connected workers, kept so that every question dispatch asks is answered in O(1).

"Is anyone idle?", "which worker has been idle longest?" and "how many workers in each state?" are
asked per request and per scrape; scanning thousands of workers for each was most of the
orchestrator's CPU at 10,000 workers. So the pool keeps the idle workers in the order they became idle
(an insertion-ordered dict: the first is the longest idle) and a count per state, both updated by the
one place a worker's state changes: :attr:`WorkerConn.state`'s setter.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING, Literal

from ...protocol import OrchestratorFrame, encode

if TYPE_CHECKING:
    from aiohttp import web

WorkerState = Literal["connecting", "idle", "executing", "draining", "offline"]
STATES: tuple[WorkerState, ...] = ("connecting", "idle", "executing", "draining", "offline")


class WorkerConn:
    """One worker's socket and what the orchestrator knows of it."""

    __slots__ = (
        "_pool",
        "_state",
        "busy_since",
        "capabilities",
        "connected_at",
        "execution_id",
        "idle_since",
        "last_seen",
        "place",
        "released",
        "superseded",
        "time_row",
        "version",
        "worker_id",
        "ws",
    )

    def __init__(self, worker_id: str, version: str, ws: web.WebSocketResponse) -> None:
        self.worker_id = worker_id
        self.version = version
        self.ws = ws
        self._state: WorkerState = "connecting"
        self._pool: Pool | None = None
        self.execution_id: str | None = None
        self.connected_at = time.time()
        self.last_seen = time.monotonic()
        self.superseded = False
        #: Executions this worker was told to forget; their replayed frames are dropped without a warning.
        self.released: set[str] = set()
        #: What the worker said it can do in its hello (``setup-token``: it can run a Claude login).
        self.capabilities: frozenset[str] = frozenset()
        self.place: str | None = None
        #: When it took its current execution (Unix time), for how long it has run
        self.busy_since: float | None = None
        #: When it last became idle (Unix time): a scaler removes workers idle for long
        self.idle_since: float | None = None
        #: Its row in the worker-time table (what a cost report sums)
        self.time_row = 0

    def __repr__(self) -> str:
        return f"WorkerConn({self.worker_id!r}, {self._state})"

    @property
    def state(self) -> WorkerState:
        return self._state

    @state.setter
    def state(self, new: WorkerState) -> None:
        old, self._state = self._state, new
        if old != new:
            now = time.time()
            self.busy_since = now if new == "executing" else None
            self.idle_since = now if new == "idle" else None
        if self._pool is not None and old != new:
            self._pool._moved(self, old, new)

    async def send(self, frame: OrchestratorFrame) -> bool:
        try:
            await self.ws.send_str(encode(frame))
            return True
        except (ConnectionError, RuntimeError):
            return False

    def describe(self) -> dict[str, object]:
        return {
            "workerId": self.worker_id,
            "state": self._state,
            "executionId": self.execution_id,
            "version": self.version,
            "connectedAt": self.connected_at,
            "place": self.place,
            "busySince": self.busy_since,
            "idleSince": self.idle_since,
            "lastSeenSecondsAgo": round(time.monotonic() - self.last_seen, 3),
        }


class Pool:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerConn] = {}
        self._idle: collections.OrderedDict[str, WorkerConn] = collections.OrderedDict()
        self._counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self._idle_event = asyncio.Event()
        #: connections removed so far (how many have churned through, for gc_tuning)
        self.departed = 0

    def add(self, conn: WorkerConn) -> WorkerConn | None:
        """Put ``conn`` in the pool; returns the connection it replaces under the same id, if any."""
        old = self.workers.get(conn.worker_id)
        if old is not None:
            self.remove(old)
        self.workers[conn.worker_id] = conn
        conn._pool = self
        self._counts[conn.state] += 1
        if conn.state == "idle":
            self._became_idle(conn)
        return old

    def remove(self, conn: WorkerConn) -> None:
        if self.workers.get(conn.worker_id) is not conn:
            return
        del self.workers[conn.worker_id]
        self.departed += 1
        conn._pool = None
        self._counts[conn.state] -= 1
        self._idle.pop(conn.worker_id, None)

    def _moved(self, conn: WorkerConn, old: WorkerState, new: WorkerState) -> None:
        self._counts[old] -= 1
        self._counts[new] += 1
        if old == "idle":
            self._idle.pop(conn.worker_id, None)
        if new == "idle":
            self._became_idle(conn)

    def _became_idle(self, conn: WorkerConn) -> None:
        self._idle[conn.worker_id] = conn
        self._idle.move_to_end(conn.worker_id)
        self._idle_event.set()

    def has_idle(self) -> bool:
        return bool(self._idle)

    async def wait_idle(self) -> None:
        while not self._idle:
            self._idle_event.clear()
            await self._idle_event.wait()

    def take_idle(self) -> WorkerConn | None:
        """Reserve the worker that has been idle longest (since it became idle, not since its last
        heartbeat)."""
        if not self._idle:
            return None
        _, worker = self._idle.popitem(last=False)
        worker.state = "executing"  # already out of the idle order; the setter fixes the counts
        return worker

    def mark_idle(self, worker: WorkerConn) -> None:
        if self.workers.get(worker.worker_id) is worker and worker.state not in {"draining", "offline"}:
            worker.execution_id = None
            worker.state = "idle"

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
