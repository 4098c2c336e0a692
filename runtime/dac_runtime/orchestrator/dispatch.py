"""Kafka intake and the execution state machine: queued -> dispatched -> running -> terminal.

Delivery is at-least-once and executions are idempotent by id: a request is dispatched only while its
stored status is ``queued`` with the same ``generation``; anything else is a duplicate and skipped.
A request's offset is committed only once a worker has *accepted* it (offsets commit in order per
partition, so one slow accept holds back later ones). With no idle worker the consumer's partitions
are paused: the broker keeps the backlog, nothing is re-queued.

Failure classes: a worker lost before accepting -> re-dispatched, not counted; a worker lost while
running -> the execution fails ``worker_lost`` once its lease runs out (unless the worker comes back and
re-attaches first); agent failure -> retried with exponential backoff up to ``maxAttempts``, then
dead-lettered; bad requests and unknown credentials -> terminal, dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from ..crypto import CryptoError
from ..protocol import Accepted, Assign, Cancel, Complete, Event, ExecConfig, ProtocolError, Rejected, Stderr, Stdout
from ..records import DeadLetter, ExecRequest, decode_request
from .vault import MissingCredential

if TYPE_CHECKING:
    from .app import Orchestrator
    from .workers import WorkerConn

log = logging.getLogger("dac.orchestrator.dispatch")
JOB_FAILURE_PREFIXES = ("exit_code:", "agent_error")


@dataclass(eq=False)
class Pending:
    request: ExecRequest
    tp: TopicPartition | None
    offset: int | None
    produced_at: float


@dataclass(eq=False)
class Active:
    pending: Pending
    worker: WorkerConn | None
    status: str = "dispatched"
    last_seq: int = 0
    cancel_requested: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    #: Set once the dispatch is in the store and on the lifecycle topic.
    recorded: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def request(self) -> ExecRequest:
        return self.pending.request


class OffsetTracker:
    """Commit position per partition = lowest offset still in flight, else one past the highest seen."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = collections.defaultdict(set)
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._pending[tp].add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> int:
        self._pending[tp].discard(offset)
        return self.position(tp)

    def position(self, tp: TopicPartition) -> int:
        pending = self._pending.get(tp)
        return min(pending) if pending else self._next.get(tp, 0)

    def partitions(self) -> list[TopicPartition]:
        return list(self._next)


class Dispatcher:
    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.settings = orch.settings
        self.active: dict[str, Active] = {}
        self.offsets = OffsetTracker()
        self._redeliver: collections.deque[Pending] = collections.deque()
        self.consumer: AIOKafkaConsumer | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._commit_wanted: dict[TopicPartition, int] = {}
        self._commit_needed = asyncio.Event()
        self._lag = 0

    # --- intake ---------------------------------------------------------------------------------

    async def run(self, **client: Any) -> None:
        self.consumer = AIOKafkaConsumer(
            self.settings.topics.exec,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.settings.session_timeout_ms // 3),
            max_partition_fetch_bytes=1 << 20,
            **client,
        )
        await self.consumer.start()
        committer = asyncio.create_task(self.commit_forever(), name="committer")
        try:
            while True:
                try:
                    await self._step()
                except (KafkaError, OSError) as exc:
                    log.error("kafka intake error (retrying in 1s): %s", type(exc).__name__)
                    await asyncio.sleep(1)
        finally:
            committer.cancel()
            if self._commit_wanted:  # last positions before leaving the group
                with contextlib.suppress(KafkaError):
                    await self.consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in self._commit_wanted.items()})
            await self.consumer.stop()

    async def _step(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        registry = self.orch.registry
        if not registry.has_idle():
            consumer.pause(*consumer.assignment())
            await registry.wait_idle()
            consumer.resume(*consumer.assignment())
        if self._redeliver:
            await self._dispatch(self._redeliver.popleft())
            return
        batch = await consumer.getmany(timeout_ms=200, max_records=1)
        for tp, messages in batch.items():
            for message in messages:
                await self._intake(tp, message)

    async def _intake(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        self.offsets.add(tp, message.offset)
        try:
            request = decode_request(message.value or b"")
        except ProtocolError as exc:
            log.warning("dead-lettering an unreadable request at %s:%d: %s", tp.topic, message.offset, exc.message)
            raw = (message.value or b"").decode("utf-8", errors="replace")
            dead = DeadLetter(error=f"{exc.code}: {exc.message}", attempts=0, timestamp=time.time(), raw=raw)
            key = message.key.decode("utf-8", errors="replace") if message.key else None
            await self.orch.bus.dead_letter(dead, key)
            await self._done(tp, message.offset)
            return
        produced = message.timestamp / 1000 if message.timestamp and message.timestamp > 0 else time.time()
        await self._dispatch(Pending(request, tp, message.offset, produced))

    async def _done(self, tp: TopicPartition | None, offset: int | None) -> None:
        """Mark a request handled; its partition's commit position advances when nothing before it is
        still in flight. The commit itself runs on the committer task, so a worker's frame loop never
        waits on a broker round trip."""
        if tp is None or offset is None:
            return
        position = self.offsets.done(tp, offset)
        if self._committed.get(tp, -1) < position:
            self._commit_wanted[tp] = position
            self._commit_needed.set()

    async def commit_forever(self) -> None:
        """Commit the newest wanted position per partition; bursts of accepts coalesce into one commit."""
        while True:
            await self._commit_needed.wait()
            self._commit_needed.clear()
            wanted, self._commit_wanted = self._commit_wanted, {}
            if self.consumer is None or not wanted:
                continue
            try:
                await self.consumer.commit({tp: OffsetAndMetadata(pos, "") for tp, pos in wanted.items()})
                self._committed.update(wanted)
            except KafkaError as exc:
                log.warning("offset commit failed, retrying: %s", type(exc).__name__)
                for tp, pos in wanted.items():
                    self._commit_wanted[tp] = max(pos, self._commit_wanted.get(tp, 0))
                await asyncio.sleep(0.5)
                self._commit_needed.set()

    def lag(self) -> int:
        return self._lag

    async def measure_lag(self, interval: float = 2.0) -> None:
        """Requests on the exec topic not yet accepted by a worker. Measured from the broker's end
        offsets, since a paused consumer (backpressure) has no fetch metadata to go on."""
        while True:
            await asyncio.sleep(interval)
            consumer = self.consumer
            if consumer is None or not consumer.assignment():
                continue
            try:
                partitions = list(consumer.assignment())
                ends = await consumer.end_offsets(partitions)
                total = 0
                for tp in partitions:
                    position = self.offsets.position(tp) if tp in self.offsets.partitions() else None
                    if position is None:
                        position = await consumer.committed(tp) or 0
                    total += max(0, ends.get(tp, 0) - position)
                self._lag = total
            except KafkaError as exc:
                log.debug("lag measurement failed: %s", type(exc).__name__)

    # --- dispatch -------------------------------------------------------------------------------

    async def _dispatch(self, pending: Pending) -> None:
        """Hand a request to an idle worker. The assign frame goes out first and the bookkeeping
        (store rows, lifecycle records) right after it, so none of it sits on the dispatch latency;
        ``_accepted`` waits for that bookkeeping, which keeps the lifecycle order intact."""
        request = pending.request
        store, events = self.orch.store, self.orch.events
        row = store.get_execution(request.execution_id)
        if row is not None and (row["status"] != "queued" or row["generation"] != request.generation):
            log.debug("skipping duplicate request for %s (%s)", request.execution_id, row["status"])
            await self._done(pending.tp, pending.offset)
            return
        worker = self.orch.registry.take_idle()
        if worker is None:
            self._redeliver.appendleft(pending)
            return
        try:
            env = self.orch.vault.environment_for(request.credentials)
        except (MissingCredential, CryptoError) as exc:
            self.orch.registry.mark_idle(worker)
            if row is None:
                await self._record_new(request)
            reason = f"unknown credential {exc}" if isinstance(exc, MissingCredential) else str(exc)
            await events.finish(request, "failed", reason=reason, dead_letter=True)
            await self._done(pending.tp, pending.offset)
            return
        active = Active(pending, worker)
        self.active[request.execution_id] = active
        worker.execution_id = request.execution_id
        s = self.settings
        assign = Assign(
            execution_id=request.execution_id,
            persona_id=request.persona_id,
            prompt=request.prompt,
            env=env,
            config=ExecConfig(
                timeout_ms=request.timeout_ms or s.default_timeout_ms,
                max_output_bytes=request.max_output_bytes or s.default_max_output_bytes,
                inactivity_timeout_ms=s.inactivity_timeout_ms,
            ),
        )
        sent = await worker.send(assign)
        env.clear()
        self.orch.metrics.dispatch_latency.observe(max(0.0, time.time() - pending.produced_at))
        if row is None:
            await self._record_new(request)
        store.update_execution(request.execution_id, status="dispatched", worker_id=worker.worker_id)
        await events.lifecycle(request, "dispatched", worker_id=worker.worker_id)
        active.recorded.set()
        if not sent:
            await self._requeue_undelivered(request.execution_id, "worker socket closed during assign")
            return
        loop = asyncio.get_running_loop()
        active.timer = loop.call_later(s.accept_timeout_ms / 1000, self._spawn, self._accept_timeout, active)

    async def _record_new(self, request: ExecRequest) -> None:
        """A request that came straight from Kafka (not through the API) gets its row and ``queued``."""
        self.orch.store.insert_execution(
            request.execution_id, request.persona_id, msgspec.json.encode(request), request.attempt, 0
        )
        await self.orch.events.lifecycle(request, "queued")

    def _spawn(self, fn: Any, *args: Any) -> None:
        asyncio.get_running_loop().create_task(fn(*args))

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
            await self.orch.events.finish(active.request, "cancelled", reason="cancelled before start")
            await self._done(active.pending.tp, active.pending.offset)
            return
        self.orch.store.update_execution(execution_id, status="queued", worker_id=None)
        await self.orch.events.lifecycle(active.request, "queued", reason=why)
        self._redeliver.append(active.pending)
        if not self.orch.registry.has_idle():
            return

    # --- frames from workers --------------------------------------------------------------------

    async def on_frame(self, worker: WorkerConn, frame: Any) -> None:
        execution_id = getattr(frame, "execution_id", None)
        active = self.active.get(execution_id) if execution_id else None
        if active is None or active.worker is not worker:
            log.warning("worker %s sent %s for an execution it does not hold", worker.worker_id, type(frame).__name__)
            return
        if isinstance(frame, Stdout | Stderr | Event):
            if frame.seq <= active.last_seq and frame.seq != 0:
                return  # replayed after a reconnect: already relayed
            active.last_seq = max(active.last_seq, frame.seq)
            await self.orch.events.output(active.request, frame)
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
        self.orch.store.update_execution(request.execution_id, status="running")
        await self.orch.events.lifecycle(
            request, "running", worker_id=active.worker.worker_id if active.worker else None
        )
        await self._done(active.pending.tp, active.pending.offset)
        if active.cancel_requested and active.worker:
            await active.worker.send(Cancel(execution_id=request.execution_id))

    async def _complete(self, active: Active, frame: Complete) -> None:
        request = active.request
        self.active.pop(request.execution_id, None)
        if active.timer:
            active.timer.cancel()
        if active.worker is not None:
            active.worker.execution_id = None
        if active.status == "dispatched":  # complete without accepted (e.g. spawn failure): still commit
            await self._done(active.pending.tp, active.pending.offset)
        max_attempts = request.max_attempts or self.settings.max_attempts
        job_failure = frame.status == "failed" and (frame.reason or "").startswith(JOB_FAILURE_PREFIXES)
        if job_failure and request.attempt < max_attempts:
            await self._retry(request, frame)
            return
        await self.orch.events.finish(
            request,
            frame.status,
            exit_code=frame.exit_code,
            duration_ms=frame.duration_ms,
            usage=frame.usage,
            reason=frame.reason,
            dead_letter=job_failure,
        )

    async def _retry(self, request: ExecRequest, frame: Complete) -> None:
        row = self.orch.store.get_execution(request.execution_id) or {}
        retry = msgspec.structs.replace(
            request, attempt=request.attempt + 1, generation=int(row.get("generation", 0)) + 1
        )
        delay = self.settings.retry_backoff_ms / 1000 * 2 ** (request.attempt - 1)
        self.orch.store.update_execution(
            request.execution_id,
            status="queued",
            attempt=retry.attempt,
            generation=retry.generation,
            worker_id=None,
            request=msgspec.json.encode(retry),
        )
        reason = f"attempt {request.attempt} failed ({frame.reason}); retrying in {delay:.1f}s"
        await self.orch.events.lifecycle(retry, "queued", reason=reason)

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.orch.bus.request(retry)

        asyncio.get_running_loop().create_task(later())

    # --- lost workers and leases ----------------------------------------------------------------

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
            loop = asyncio.get_running_loop()
            active.timer = loop.call_later(self.settings.lease_ms / 1000, self._spawn, self._lease_expired, active)

    def reattach(self, worker: WorkerConn, execution_id: str, last_seq: int) -> None:
        active = self.active.get(execution_id)
        if active is None:
            row = self.orch.store.get_execution(execution_id)
            if row is None or row["status"] not in {"dispatched", "running"} or row["worker_id"] != worker.worker_id:
                log.warning(
                    "worker %s re-announced unknown execution %s: cancelling it", worker.worker_id, execution_id
                )
                self._spawn(worker.send, Cancel(execution_id=execution_id))
                return
            request = msgspec.json.decode(row["request"], type=ExecRequest)
            active = Active(Pending(request, None, None, time.time()), None, status="running", last_seq=0)
            active.recorded.set()
            self.active[execution_id] = active
        if active.timer:
            active.timer.cancel()
        active.worker = worker
        worker.state = "executing"
        worker.execution_id = execution_id
        log.info("worker %s re-attached execution %s", worker.worker_id, execution_id)

    def adopt_orphans(self) -> None:
        """After a restart, executions the store says were running get a lease to be re-attached."""
        for status in ("dispatched", "running"):
            for row in self.orch.store.executions_by_status(status):
                request = msgspec.json.decode(row["request"], type=ExecRequest)
                active = Active(Pending(request, None, None, time.time()), None, status="running")
                active.recorded.set()
                self.active[request.execution_id] = active
                loop = asyncio.get_running_loop()
                active.timer = loop.call_later(self.settings.lease_ms / 1000, self._spawn, self._lease_expired, active)

    async def _lease_expired(self, active: Active, status: str = "failed") -> None:
        if active.worker is not None or self.active.get(active.request.execution_id) is not active:
            return
        self.active.pop(active.request.execution_id, None)
        reason = "worker_lost" if status == "failed" else "cancelled while its worker was offline"
        await self.orch.events.finish(active.request, status, reason=reason)

    # --- cancel ---------------------------------------------------------------------------------

    async def cancel(self, execution_id: str) -> None:
        active = self.active.get(execution_id)
        if active is None:
            row = self.orch.store.get_execution(execution_id)
            if row is not None:
                request = msgspec.json.decode(row["request"], type=ExecRequest)
                await self.orch.events.finish(request, "cancelled", reason="cancelled before dispatch")
            return
        active.cancel_requested = True
        if active.worker is not None:
            await active.worker.send(Cancel(execution_id=execution_id))
        elif active.status == "running":
            self.active.pop(execution_id, None)
            if active.timer:
                active.timer.cancel()
            await self.orch.events.finish(active.request, "cancelled", reason="cancelled while its worker was offline")
