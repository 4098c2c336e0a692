"""The execution state machine: queued -> dispatched -> running -> completed|failed|cancelled|timed_out.

Requests arrive from :mod:`.intake`, which owns the Kafka consumer and offset commits; this module
tells it when a request is handled (accepted by a worker, skipped, or dead-lettered). Delivery is
at-least-once and executions are idempotent by id: a request is dispatched only while its stored status
is ``queued`` with the same ``generation``; anything else is a duplicate and skipped.

Failure classes: a worker lost before accepting -> re-dispatched, not counted; a worker lost while
running -> the execution fails ``worker_lost`` once its lease runs out (unless the worker comes back and
re-attaches first); agent failure -> retried with exponential backoff up to ``maxAttempts``, then
dead-lettered; bad requests and unknown credentials -> terminal, dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from ...protocol import (
    Accepted,
    Cancel,
    Complete,
    Event,
    Received,
    Rejected,
    Stderr,
    Stdout,
)
from ...records import ExecRequest
from ..store import StoreUnavailable
from .assign import Assigning
from .leases import Active, ActiveRuns, Leases
from .limits import Concurrency

if TYPE_CHECKING:
    from ..config import Settings
    from ..ops.kafka_health import KafkaHealth
    from ..ops.metrics import Metrics
    from ..store import Store
    from ..team.credentials import Credentials
    from ..team.personas import Personas
    from ..team.vault import Vault
    from .bus import Bus
    from .events import Events
    from .intake import Intake
    from .pool import Pool, WorkerConn

log = logging.getLogger("dac.orchestrator.dispatch")
JOB_FAILURE_PREFIXES = ("exit_code:", "agent_error")


class Dispatcher(Assigning, Leases):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        intake: Intake,
        pool: Pool,
        events: Events,
        bus: Bus,
        kafka: KafkaHealth,
        vault: Vault,
        personas: Personas,
        credentials: Credentials,
        metrics: Metrics,
    ) -> None:
        self.settings, self.store, self.intake, self.pool = settings, store, intake, pool
        self.events, self.bus, self.kafka, self.metrics = events, bus, kafka, metrics
        self.vault, self.personas, self.credentials = vault, personas, credentials
        self.unconfirmed: dict[str, set[str]] = {}
        self.active = ActiveRuns(on_leave=intake.unpark)
        self.claiming: collections.Counter[str] = collections.Counter()
        self.lost_claims: dict[str, str] = {}
        self.limits = Concurrency(store, personas, self.active.by_persona, self.claiming, intake.parked, intake.unpark)

    async def _accept_timeout(self, active: Active) -> None:
        if active.status == "dispatched" and self.active.get(active.request.execution_id) is active:
            worker = active.worker
            log.warning("worker %s did not accept %s in time", worker and worker.worker_id, active.request.execution_id)
            if worker is not None:
                await worker.ws.close(code=4003, message=b"accept timeout")
            await self._requeue_undelivered(active.request.execution_id, "accept timeout")

    async def _requeue_undelivered(self, execution_id: str, why: str) -> None:
        """Infrastructure failure before the worker took the job: dispatch again, not counted."""
        active = self.active.pop(execution_id, None)
        if active is None:
            return
        if active.timer:
            active.timer.cancel()
        log.info("re-dispatching %s: %s", execution_id, why)
        if active.cancel_requested:
            await self.events.finish(active.request, "cancelled", reason="cancelled before start")
            self.intake.done(active.pending.tp, active.pending.offset)
            return
        self.store.update_execution(execution_id, status="queued", worker_id=None)
        await self.events.lifecycle(active.request, "queued", reason=why)
        active.pending.read_at = 0.0  # its handling time would include the failed attempt
        self.intake.redeliver(active.pending)

    # --- frames from workers --------------------------------------------------------------------

    async def on_frame(self, worker: WorkerConn, frame: Any) -> None:
        execution_id = getattr(frame, "execution_id", None)
        active = self.active.get(execution_id) if execution_id else None
        if active is None or active.worker is not worker:
            if execution_id not in worker.released:  # a backlog we told it to drop is expected, once
                log.warning(
                    "worker %s sent %s for an execution it does not hold", worker.worker_id, type(frame).__name__
                )
            return
        if isinstance(frame, Stdout | Stderr | Event):
            if frame.seq <= active.last_seq and frame.seq != 0:
                return  # replayed after a reconnect: already relayed
            active.last_seq = max(active.last_seq, frame.seq)
            await self.events.output(active.request, frame)
        elif isinstance(frame, Accepted):
            await self._accepted(active)
        elif isinstance(frame, Rejected):
            if frame.reason == "draining":
                worker.state = "draining"
            await self._requeue_undelivered(active.request.execution_id, f"worker rejected: {frame.reason}")
        elif isinstance(frame, Complete):
            await self._complete(active, frame)

    async def _accepted(self, active: Active) -> None:
        await active.recorded.wait()
        if active.status != "dispatched":
            return
        if active.timer:
            active.timer.cancel()
        active.status = "running"
        request = active.request
        self.store.update_execution(request.execution_id, status="running")
        await self.events.lifecycle(request, "running", worker_id=active.worker.worker_id if active.worker else None)
        self.intake.done(active.pending.tp, active.pending.offset)
        if active.cancel_requested and active.worker:
            await active.worker.send(Cancel(execution_id=request.execution_id))

    async def _complete(self, active: Active, frame: Complete) -> None:
        request = active.request
        if active.completing:
            return  # the same result again (a replay) while the first is being recorded
        active.completing = True
        if active.timer:
            active.timer.cancel()
        worker = active.worker
        if worker is not None and worker.execution_id == request.execution_id:
            worker.execution_id = None
        try:
            recorded = await self._record_completion(active, frame)
        except BaseException:  # the store is away: the worker sends the result again, and it is taken then
            active.completing = False
            raise
        # Gone from the active runs only now: its persona's next run is dispatched after this end is told.
        if self.active.get(request.execution_id) is active:
            self.active.pop(request.execution_id)
        await self.store.commit()
        if worker is not None and recorded:  # recorded: the worker may forget this result
            await worker.send(Received(execution_id=request.execution_id, seq=active.last_seq, final=True))

    async def _record_completion(self, active: Active, frame: Complete) -> bool:
        """False when the store refused it: the worker keeps the result for the execution's owner."""
        request = active.request
        if active.status == "dispatched":  # complete without accepted (e.g. spawn failure): still commit
            self.intake.done(active.pending.tp, active.pending.offset)
        max_attempts = request.max_attempts or self.settings.max_attempts
        job_failure = frame.status == "failed" and (frame.reason or "").startswith(JOB_FAILURE_PREFIXES)
        if job_failure and request.attempt < max_attempts:
            await self._retry(request, frame)
            return True
        return await self.events.finish(
            request,
            frame.status,
            exit_code=frame.exit_code,
            duration_ms=frame.duration_ms,
            usage=frame.usage,
            reason=frame.reason,
            dead_letter=job_failure,
            last_seq=active.last_seq,  # every frame it relayed (resumed from the store after a re-attach)
        )

    async def _retry(self, request: ExecRequest, frame: Complete) -> None:
        row = await self.store.get_execution(request.execution_id) or {}
        retry = msgspec.structs.replace(
            request, attempt=request.attempt + 1, generation=int(row.get("generation", 0)) + 1
        )
        delay = self.settings.retry_backoff_ms / 1000 * 2 ** (request.attempt - 1)
        self.store.update_execution(
            request.execution_id,
            status="queued",
            attempt=retry.attempt,
            generation=retry.generation,
            worker_id=None,
            request=msgspec.json.encode(retry),
        )
        reason = f"attempt {request.attempt} failed ({frame.reason}); retrying in {delay:.1f}s"
        await self.events.lifecycle(retry, "queued", reason=reason)

        async def later() -> None:
            await asyncio.sleep(delay)
            while True:  # the row stays queued until its request is on the broker
                try:
                    await self.bus.request(retry)
                    return
                except Exception as exc:
                    log.warning("retry of %s not queued yet (%s)", request.execution_id, type(exc).__name__)
                    await asyncio.sleep(self.settings.kafka_probe_ms / 1000)
                    await self.kafka.wait_up()

        asyncio.get_running_loop().create_task(later())

    # --- cancel ---------------------------------------------------------------------------------

    async def cancels_forever(self, interval_s: float = 0.25) -> None:
        """Carry out cancels asked of other orchestrators for runs this one owns."""
        while True:
            await asyncio.sleep(interval_s)
            if not self.events.acting():
                continue
            try:
                asked = await self.store.cancels_asked()
            except StoreUnavailable:
                continue  # the store is away: asked again once it is back
            for execution_id in asked:
                active = self.active.get(execution_id)
                if active is not None and not active.cancel_requested:
                    await self.cancel(execution_id)

    async def cancel(self, execution_id: str) -> None:
        active = self.active.get(execution_id)
        if active is None:
            row = await self.store.get_execution(execution_id)
            if row is None:
                return
            if row["status"] in ("dispatched", "running") and row["owner"] != self.store.fence:
                await self.store.request_cancel(execution_id)  # its owner carries it out (cancels_forever)
                return
            request = msgspec.json.decode(row["request"], type=ExecRequest)
            await self.events.finish(request, "cancelled", reason="cancelled before dispatch")
            return
        active.cancel_requested = True
        if active.worker is not None:
            await active.worker.send(Cancel(execution_id=execution_id))
        elif active.status == "running":
            self.active.pop(execution_id, None)
            if active.timer:
                active.timer.cancel()
            await self.events.finish(active.request, "cancelled", reason="cancelled while its worker was offline")
