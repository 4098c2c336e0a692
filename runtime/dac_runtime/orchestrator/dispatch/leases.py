"""Executions whose worker went away: leases, and taking them back when the worker returns.

A worker lost before accepting: the request is dispatched again. Lost while running: the execution
keeps a lease for the worker to come back; a worker that does re-announces what it holds (running,
or finished with its result unacknowledged) and the orchestrator, a restarted one from its store,
takes it back from that worker only. Otherwise the lease expires and the execution is ``worker_lost``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ...protocol import TERMINAL_STATUSES, Cancel, Received, Resume
from ...records import ExecRequest
from .pending import Pending

if TYPE_CHECKING:
    from ..config import Settings
    from ..store import Store
    from .events import Events
    from .pool import WorkerConn

log = logging.getLogger("dac.orchestrator.dispatch")


@dataclass(eq=False)
class Active:
    pending: Pending
    worker: WorkerConn | None
    status: str = "dispatched"
    last_seq: int = 0
    cancel_requested: bool = False
    #: its end is being recorded: it still counts towards its persona until that end is told
    completing: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    #: Set once the dispatch is in the store and on the lifecycle topic.
    recorded: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def request(self) -> ExecRequest:
        return self.pending.request


_MISSING: Any = object()


class ActiveRuns(dict[str, Active]):
    """Active executions by id, counted per persona as they come and go, so that a persona's
    ``maxConcurrent`` is checked in O(1); ``on_leave(persona_id)`` is told each time one goes."""

    def __init__(self, on_leave: Any = None) -> None:
        super().__init__()
        self.by_persona: collections.Counter[str] = collections.Counter()
        self.on_leave = on_leave

    def __setitem__(self, execution_id: str, active: Active) -> None:
        old = self.get(execution_id)
        super().__setitem__(execution_id, active)
        self.by_persona[active.request.persona_id] += 1
        if old is not None:
            self._left(old)

    def pop(self, execution_id: str, default: Any = _MISSING) -> Any:
        active = super().pop(execution_id, _MISSING)
        if active is _MISSING:
            if default is _MISSING:
                raise KeyError(execution_id)
            return default
        self._left(active)
        return active

    def __delitem__(self, execution_id: str) -> None:
        self.pop(execution_id)

    def _left(self, active: Active) -> None:
        persona_id = active.request.persona_id
        self.by_persona[persona_id] -= 1
        if self.by_persona[persona_id] <= 0:
            del self.by_persona[persona_id]
        if self.on_leave is not None:
            self.on_leave(persona_id)


class Leases:
    """The dispatcher's half that deals with lost and returning workers (a mixin: it shares the
    dispatcher's table of active executions and its requeue and accept steps)."""

    store: Store
    events: Events
    settings: Settings
    active: ActiveRuns
    #: worker id -> executions restored as ``dispatched`` to it (after a restart), until it says hello
    unconfirmed: dict[str, set[str]]

    def _spawn(self, fn: Any, *args: Any) -> None:
        asyncio.get_running_loop().create_task(fn(*args))

    async def _requeue_undelivered(self, execution_id: str, why: str) -> None:
        raise NotImplementedError

    async def _accepted(self, active: Active) -> None:
        raise NotImplementedError

    def worker_lost(self, worker: WorkerConn) -> None:
        for active in list(self.active.values()):
            if active.worker is not worker:
                continue
            if active.status == "dispatched":
                self._spawn(self._requeue_undelivered, active.request.execution_id, "worker lost before accepting")
                continue
            active.worker = None
            if active.cancel_requested:
                self._spawn(self._lease_expired, active, "cancelled")
                continue
            log.warning(
                "worker %s lost while running %s: lease of %ss starts",
                worker.worker_id,
                active.request.execution_id,
                self.settings.lease_ms / 1000,
            )
            self._start_lease(active)

    def _start_lease(self, active: Active) -> None:
        """Give a workerless running execution ``lease_ms`` for its worker to come back and re-attach."""
        loop = asyncio.get_running_loop()
        active.timer = loop.call_later(self.settings.lease_ms / 1000, self._spawn, self._lease_expired, active)

    async def _from_row(self, row: dict[str, Any]) -> tuple[Active, bool]:
        """Rebuild a running execution from its stored row (after an orchestrator restart, or taken
        over from a gone one); ``(active, False)`` when it is already in the table. Output
        de-duplication resumes from the highest seq the store holds.

        A worker re-attaching and the adoption of its gone orchestrator's runs can rebuild the same
        row at once; whichever lands second must join the first, not replace it, or the worker's
        frames go to one copy while the other's lease runs out and fails it ``worker_lost``."""
        request = msgspec.json.decode(row["request"], type=ExecRequest)
        last_seq = await self.store.last_seq(request.execution_id)
        existing = self.active.get(request.execution_id)
        if existing is not None:
            return existing, False
        active = Active(Pending(request, None, None, time.time()), None, status=row["status"])
        active.last_seq = last_seq
        active.recorded.set()
        self.active[request.execution_id] = active
        return active, True

    async def resume(self, worker: WorkerConn, resumes: list[Resume]) -> None:
        """A reconnecting worker re-announced what it holds; its unacknowledged frames follow."""
        for held in resumes:
            await self.reattach(worker, held.execution_id, finished=held.finished)
        announced = {held.execution_id for held in resumes}
        for execution_id in self.unconfirmed.pop(worker.worker_id, set()) - announced:
            # Restored from the store as sent to this worker, yet it does not hold it: the assign
            # never reached it (the orchestrator died first), so nothing ran; dispatch it again.
            active = self.active.get(execution_id)
            if active is not None and active.worker is None and active.status == "dispatched":
                await self._requeue_undelivered(execution_id, "assign never reached the worker")

    async def reattach(self, worker: WorkerConn, execution_id: str, *, finished: bool = False) -> None:
        """Take ``execution_id`` back from the worker that ran it, running or finished. De-duplication
        continues from the seq this orchestrator last relayed (``Active.last_seq``), not from what the
        worker says it sent: frames sent to a crashed predecessor may never have been relayed."""
        active = self.active.get(execution_id)
        if active is None:
            self.events.flush()  # the stored output is where de-duplication resumes
            row = await self.store.get_execution(execution_id)
            ours = row is not None and row["worker_id"] == worker.worker_id
            if ours and row["status"] in {"dispatched", "running"}:
                # Run under another orchestrator (gone, or left by this worker): the worker's word
                # wins, and the previous owner's writes about it are refused from here on.
                if row.get("owner") != self.store.fence and not await self.store.take_over(
                    execution_id, worker.worker_id
                ):
                    log.warning("could not take over %s from its previous orchestrator", execution_id)
                    return
                active, _ = await self._from_row(row)
            else:
                worker.released.add(execution_id)
                if ours and row["status"] in TERMINAL_STATUSES:
                    log.info("worker %s re-sent %s, already recorded %s", worker.worker_id, execution_id, row["status"])
                elif not finished:
                    log.warning(
                        "worker %s re-announced unknown execution %s: cancelling it", worker.worker_id, execution_id
                    )
                    await worker.send(Cancel(execution_id=execution_id))
                else:
                    log.warning(
                        "worker %s holds a result for unknown execution %s: dropped", worker.worker_id, execution_id
                    )
                await worker.send(Received(execution_id=execution_id, final=True))
                return
        if active.timer:
            active.timer.cancel()
        active.worker = worker
        worker.state = "executing"
        worker.execution_id = execution_id
        if active.status == "dispatched":  # its accepted frame was lost with the old socket
            await self._accepted(active)
        log.info(
            "worker %s re-attached execution %s (%s)",
            worker.worker_id,
            execution_id,
            "finished" if finished else "running",
        )

    async def acknowledge_output(self, worker: WorkerConn, execution_id: str) -> None:
        """On a heartbeat: tell the worker how far its output is recorded, so its journal stays small."""
        active = self.active.get(execution_id)
        if active is not None and active.worker is worker and active.last_seq:
            seq = active.last_seq
            self.events.flush()
            await self.store.commit()  # only what is durable: the worker forgets what it is told of
            if self.events.acting():
                await worker.send(Received(execution_id=execution_id, seq=seq))

    async def adopt_orphans(self, epoch: int | None = None) -> int:
        """The running executions of a gone orchestrator (``epoch``; ``None``: rows from before owners
        were recorded) become this one's, each with a lease for its worker to re-attach."""
        adopted = 0
        for row in await self.store.adopt_from(epoch):
            if row["id"] in self.active:
                continue
            active, new = await self._from_row(row)
            if not new:  # its worker re-attached it meanwhile
                continue
            if row["status"] == "dispatched" and row["worker_id"]:
                self.unconfirmed.setdefault(row["worker_id"], set()).add(row["id"])
            self._start_lease(active)
            adopted += 1
        return adopted

    async def _lease_expired(self, active: Active, status: str = "failed") -> None:
        if active.worker is not None or self.active.get(active.request.execution_id) is not active:
            return
        if active.status == "dispatched" and status == "failed":
            # Never accepted, and its worker did not come back to say it holds it: it is not running
            # anywhere we can reach (an agent dies with its worker), so it goes to another worker.
            await self._requeue_undelivered(active.request.execution_id, "assigned worker did not return")
            return
        self.active.pop(active.request.execution_id, None)
        reason = "worker_lost" if status == "failed" else "cancelled while its worker was offline"
        await self.events.finish(active.request, status, reason=reason)
