"""Run personas on a deployment through Kafka, the host application's front door: requests produced
to the exec topic keyed by persona (the orchestrator's own partitioner, murmur2), output, lifecycle and
events consumed in this host's consumer group and routed to the executions waiting for them.

Across a restart of the host process: the journal (:mod:`.journal`) names the executions in flight and
how far into each one's output the application got (an item counts once the application's ``async
for`` has come back for the next one). The group commits, per partition, the offset of the oldest
record the application has not had yet, so a new process re-reads from there, skips by ``seq`` what
was delivered, and each outcome is reported once (the journal marks it, then ``on_result`` hears it,
with no await between). Output and events travel on two topics at their own pace, so items are put
back in ``seq`` order, and the terminal lifecycle record's ``lastSeq`` says when the last one is in.

Nothing is kept for an execution this host does not track, and each tracked one buffers at most
``max_buffered`` items that nobody has read: past that, its stream says what it dropped (``wait()``
still has the outcome). Cancel has no Kafka record: it goes through the orchestrator's API (``api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from dac_runtime.records import EventRecord, ExecRequest, LifecycleRecord, OutputRecord, Topics, decode, encode

from ..client import TERMINAL, Client, ClientError, Output, Result
from .execution import KafkaExecution
from .journal import Journal
from .offsets import Offsets

log = logging.getLogger("dac.host")
OnEvent = Callable[[KafkaExecution, Output], Any]


class KafkaExecutor:
    """Executions on a deployment, over Kafka. ``kafka`` holds aiokafka client options (bootstrap,
    security: see :func:`dac_provision.providers.kafka.client_options`); ``group_id`` is this host's
    consumer group (one per host application: each needs every record of its own executions);
    ``journal`` the file it resumes from (in memory, without one: no resume)."""

    mode = "cloud"

    def __init__(
        self,
        kafka: dict[str, Any],
        *,
        topic_prefix: str = "",
        group_id: str = "dac-host",
        journal: Path | str | None = None,
        api: Client | None = None,
        max_buffered: int = 10_000,
        on_result: Callable[[KafkaExecution, Result], None] | None = None,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self._options, self.topics = kafka, Topics.with_prefix(topic_prefix)
        self._group, self._api, self._max = group_id, api, max_buffered
        self.journal = Journal(journal or ":memory:")
        self._executions: dict[str, KafkaExecution] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handlers: dict[str, list[OnEvent]] = {}
        self._handling: set[asyncio.Future[Any]] = set()
        self._on_result = on_result
        # A short fetch wait: some brokers hold a fetch that finds nothing for all of it even when a
        # record lands meanwhile, and an execution's first line should not wait for that.
        self._consumer_options = {"fetch_max_wait_ms": 100} | (consumer_options or {})
        self._offsets = Offsets()
        self._owns_api = False
        self._resumed: list[KafkaExecution] = []

    @classmethod
    def for_deployment(cls, name: str = "default", store: Any = None, **kwargs: Any) -> KafkaExecutor:
        """For a deployment made here: its cluster (with its TLS/SASL settings), topic prefix, and an
        API client for cancel (closed with the executor)."""
        from ..engine import connect, context_for, provider_for, spec_of
        from ..providers.kafka import client_options
        from ..state import StateStore

        store = store or StateStore()
        spec = spec_of(store, name)
        local = getattr(provider_for(spec.provider), "bootstrap", None)
        bootstrap = local(context_for(store, spec)) if spec.provider == "local" and local else None
        deployment = connect(name, store)
        kwargs.setdefault("api", Client(deployment.url, deployment.api_key))
        executor = cls(client_options(spec.kafka, bootstrap), topic_prefix=spec.kafka.topic_prefix, **kwargs)
        executor._owns_api = True
        return executor

    # --- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> KafkaExecutor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Join the group and resume what the journal has in flight; returns once records can be routed."""
        self._resumed = [
            self._track(entry.execution_id, entry.persona_id, entry.delivered_seq) for entry in self.journal.in_flight()
        ]
        # acks=all, as the orchestrator: a request the broker took is on every replica. Retries may
        # duplicate one; the orchestrator takes an execution id once.
        self._producer = AIOKafkaProducer(**self._options, acks="all", linger_ms=0)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **self._options,
            **self._consumer_options,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await self._consumer.start()
        topics = (self.topics.output, self.topics.lifecycle, self.topics.events)
        self._consumer.subscribe(topics, listener=_Resolve(self))
        self._task = asyncio.create_task(self._consume(), name="dac-host-consumer")
        assigned = asyncio.ensure_future(self._assigned.wait())
        await asyncio.wait({assigned, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            assigned.cancel()
            why = self._task.exception()
            await self.aclose()
            raise ClientError(f"the host's Kafka consumer stopped: {why}")

    async def aclose(self) -> None:
        """Let the consumer finish its round (a commit is never cut in half), commit what the
        application has had, then leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except Exception:  # it had failed, or would not end: stop it
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self._consumer is not None and (last := self._offsets.to_commit()):
            with contextlib.suppress(Exception):
                await self._consumer.commit(last)
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = self._task = None
        self.journal.close()
        if self._owns_api and self._api is not None:
            await self._api.aclose()

    # --- the calls Client has ---------------------------------------------------------------------

    def on(self, event_type: str, handler: OnEvent) -> None:
        """Call ``handler(execution, item)`` for each ``event_type`` event of an execution this host tracks
        (``"*"``: every event)."""
        self._handlers.setdefault(event_type, []).append(handler)

    async def execute(
        self,
        persona_id: str,
        prompt: str,
        *,
        execution_id: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        credentials: list[str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> KafkaExecution:
        if self._producer is None:
            raise ClientError("the executor is not started (use async with, or await start())")
        try:
            request = ExecRequest(
                execution_id=execution_id or uuid.uuid4().hex,
                persona_id=persona_id,
                prompt=prompt,
                credentials=list(credentials or []),
                timeout_ms=timeout_ms,
                max_output_bytes=max_output_bytes,
                metadata=dict(metadata or {}),
            )
            request = msgspec.convert(msgspec.to_builtins(request), ExecRequest)  # the orchestrator's own checks
        except msgspec.ValidationError as exc:
            raise ClientError(f"invalid request: {exc}", 400, "invalid_request") from None
        self.journal.submitted(request.execution_id, persona_id)  # before it exists anywhere else
        execution = self._track(request.execution_id, persona_id, 0)
        await self._producer.send_and_wait(self.topics.exec, encode(request), key=persona_id.encode())
        return execution

    def in_flight(self) -> list[KafkaExecution]:
        """Executions submitted (by this process or the one before it) whose outcome is not reported yet."""
        return list(self._executions.values())

    def resumed(self) -> list[KafkaExecution]:
        """The executions this process took up from its journal at start: the previous process's
        unfinished ones. Each is followed from where that one's application left it (some may have
        ended meanwhile: their stream holds the rest, their ``wait()`` has the outcome)."""
        return list(self._resumed)

    def _track(self, execution_id: str, persona_id: str, delivered: int) -> KafkaExecution:
        execution = KafkaExecution(execution_id, persona_id, delivered, self._max)
        execution._consumed = self._consumed
        if self._api is not None:
            execution.cancel_with = self._api.cancel
        self._executions[execution_id] = execution
        return execution

    # --- routing ----------------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._consumer is not None
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            finished: list[KafkaExecution] = []
            for tp, records in batches.items():
                for message in records:
                    self._route(tp, message.offset, message.value, finished)
            for execution in finished:
                self._report(execution)
            commit = self._offsets.to_commit()
            if commit:
                await self._consumer.commit(commit)

    def _consumed(self, execution: KafkaExecution, seq: int) -> None:
        self.journal.delivered({execution.id: seq})
        self._offsets.done((execution.id, seq))

    def _route(self, tp: TopicPartition, offset: int, value: bytes | None, done: list[KafkaExecution]) -> None:
        topic = tp.topic
        self._offsets.seen(tp, offset)
        try:
            if topic == self.topics.lifecycle:
                record: Any = decode(value or b"", LifecycleRecord)
            elif topic == self.topics.output:
                record = decode(value or b"", OutputRecord)
            else:
                record = decode(value or b"", EventRecord)
        except Exception as exc:  # a record this host cannot read is skipped, said once, never fatal
            log.warning("skipping an unreadable record on %s: %s", topic, str(exc)[:200])
            return
        execution = self._executions.get(record.execution_id)
        if execution is None:
            return  # not ours, or already reported
        if isinstance(record, LifecycleRecord):
            execution._status(record)
            if record.status in TERMINAL:
                self._offsets.hold(tp, offset, (execution.id, "end"))
        else:
            if isinstance(record, OutputRecord):
                item = Output(record.stream, record.seq, text=record.chunk)
            else:
                item = Output("event", record.seq, event_type=record.event_type, payload=record.payload)
            if record.seq == 0:  # the orchestrator's own (a chained action's fate): outside the numbering
                execution._put(item)
                self._dispatch(execution, item)
                return
            if record.seq >= execution._next and record.seq not in execution._pending:
                self._offsets.hold(tp, offset, (execution.id, record.seq))
            for ready in execution._arrived(record.seq, item):
                if ready.kind == "event":
                    self._dispatch(execution, ready)
        if execution._complete() and execution not in done:
            done.append(execution)

    def _dispatch(self, execution: KafkaExecution, item: Output) -> None:
        for handler in self._handlers.get(item.event_type or "", []) + self._handlers.get("*", []):
            try:
                outcome = handler(execution, item)
                if asyncio.iscoroutine(outcome):
                    task = asyncio.ensure_future(outcome)
                    self._handling.add(task)
                    task.add_done_callback(self._handling.discard)
            except Exception:  # a failing handler is the host app's bug; the stream goes on
                log.exception("event handler for %s failed", item.event_type)

    def _report(self, execution: KafkaExecution) -> None:
        record = execution._terminal
        assert record is not None
        usage = None if record.usage is None else msgspec.to_builtins(record.usage)
        result = Result(execution.id, record.status, record.exit_code, record.duration_ms, record.reason, usage)
        first = self.journal.reported(execution.id, msgspec.to_builtins(result.__dict__))
        if first and self._on_result is not None:
            try:
                self._on_result(execution, result)
            except Exception:
                log.exception("on_result failed for %s", execution.id)
        self._executions.pop(execution.id, None)
        self._offsets.done((execution.id, "end"))
        if not execution.iterated or execution._dropped:  # nobody reads (all of) it: not waited for
            self._offsets.forget(execution.id)
        execution._finish(result if first else None)


class _Resolve(ConsumerRebalanceListener):
    """Resolve "latest" for partitions with no committed offset at once, and commit it, so a request
    produced after start() cannot have its output land before this host's position on that partition,
    whether this process reads it or the one after a crash does."""

    def __init__(self, executor: KafkaExecutor) -> None:
        self.executor = executor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.executor._offsets.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self.executor._consumer
        assert consumer is not None
        fresh = {}
        for tp in assigned:
            position = await consumer.position(tp)
            if await consumer.committed(tp) is None:
                fresh[tp] = position
        if fresh:  # committed now: a restart before any record arrives must resume here, not at "latest"
            await consumer.commit(fresh)
        self.executor._assigned.set()
