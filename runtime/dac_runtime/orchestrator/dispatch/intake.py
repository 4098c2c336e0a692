"""Kafka intake: consume exec requests, pause while no worker is idle, commit offsets in order.

A request's offset is committed only once it is handled (a worker accepted it, or it was skipped or
dead-lettered). Offsets commit in order per partition, so one slow accept holds back later ones: on a
crash they are re-delivered, and dispatch, being idempotent by execution id and generation, skips the
ones already taken. With no idle worker the consumer's partitions are paused: the broker keeps the
backlog, nothing is re-queued.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from ...protocol import ProtocolError
from ...records import DeadLetter, ExecRequest, decode_request
from ..store import StoreUnavailable
from .backlog import Backlog
from .offsets import OffsetTracker
from .parked import Parked
from .pending import Pending
from .rebalance import HandOn

if TYPE_CHECKING:
    from ..config import Settings
    from ..ops.dead_letters import DeadLetters
    from ..ops.kafka_health import KafkaHealth
    from ..ops.metrics import Metrics
    from .bus import Bus
    from .handoff import Handoff
    from .pool import Pool

log = logging.getLogger("dac.orchestrator.intake")
#: Records fetched at once (never more than there are idle workers).
INTAKE_BATCH = 64
#: The longest the intake loop runs without letting other tasks in.
YIELD_EVERY_S = 0.002
#: With no idle worker for this long, the consumer is paused (the backlog stays in Kafka).
PAUSE_AFTER_S = 0.05
#: While paused, how often a peer's idle workers are looked at again (their counts come with leases).
RECHECK_S = 0.25
#: Quiet this long, and the consumer polls the broker at the idle pace.
IDLE_AFTER_S = 1.0
#: A dispatch that failed for this (the store or the broker away) is handed back, and intake waits.
OUTAGES = (KafkaError, OSError, StoreUnavailable)
OUTAGE_WAIT_S = 0.5
#: Requests waiting for their persona's turn (``maxConcurrent``) held at most; beyond, fetching waits.
PARK_MAX = 10_000


async def _never(pending: Pending) -> bool:
    return False


async def _nowhere(batch: list[Pending]) -> list[tuple[Pending, Exception]]:
    raise RuntimeError("intake read a request before a dispatcher was wired to it")


class Intake:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        kafka: KafkaHealth,
        bus: Bus,
        metrics: Metrics,
        dead_letters: DeadLetters,
    ) -> None:
        self.settings, self.pool, self.kafka, self.bus = settings, pool, kafka, bus
        self.metrics, self.dead_letters = metrics, dead_letters
        #: where requests read go, a batch at a time: the dispatcher's, set by the composition root
        #: (it needs this intake); it returns the ones whose dispatch raised, with what it raised
        self.dispatch: Callable[[list[Pending]], Awaitable[list[tuple[Pending, Exception]]]] = _nowhere
        #: where requests go when no worker here is idle and a peer's is (several orchestrators)
        self.handoff: Handoff | None = None
        self.offsets = OffsetTracker()
        self._redeliver: collections.deque[Pending] = collections.deque()
        self.waiting = Parked(lambda pending: self.redeliver(pending, front=True))
        #: a persona at its limit over the deployment parks a request instead of handing it off
        #: (the dispatcher's :meth:`~.assign.Assigning.held`, set by the composition root)
        self.held: Callable[[Pending], Awaitable[bool]] = _never
        self.consumer: AIOKafkaConsumer | None = None
        self.group = HandOn(self._revoked)  # what a rebalance takes away, and whether one gave a share
        self._committed: dict[TopicPartition, int] = {}
        self._commit_wanted: dict[TopicPartition, int] = {}
        self._commit_needed = asyncio.Event()
        self._lag, self._lag_at = 0, float("-inf")
        self._lag_lock = asyncio.Lock()
        self._last_record = time.monotonic()
        self.backlog = Backlog(self.settings.kafka_bootstrap, self.settings.kafka_client())

    def redeliver(self, pending: Pending, *, front: bool = False) -> None:
        """Hand a request back for another dispatch (no idle worker after all, or its worker failed it)."""
        (self._redeliver.appendleft if front else self._redeliver.append)(pending)

    def park(self, pending: Pending) -> None:
        """Hold a request whose persona is at its ``maxConcurrent`` until one of its runs ends."""
        self.waiting.park(pending)

    def unpark(self, persona_id: str) -> None:
        self.waiting.unpark(persona_id)

    def parked(self) -> dict[str, int]:
        return self.waiting.by_persona()

    async def run(self, **client: Any) -> None:
        self.consumer = AIOKafkaConsumer(
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
        self.consumer.subscribe([self.settings.topics.exec], listener=self.group)
        await self.consumer.start()
        committer = asyncio.create_task(self.commit_forever(), name="committer")
        loop = asyncio.get_running_loop()
        try:
            since = loop.time()
            while True:
                if committer.done():  # it ended: let the supervisor see why and restart intake whole
                    committer.result()
                    raise RuntimeError("the offset committer stopped")
                try:
                    await self._step()
                except (KafkaError, OSError) as exc:
                    if self.kafka.up:  # an outage is logged once, by the health probe
                        log.error("kafka intake error (retrying in 1s): %s", type(exc).__name__)
                    await asyncio.sleep(1)
                # A backlog can be dispatched without ever waiting on I/O; let the API, heartbeats
                # and worker frames in at least every YIELD_EVERY_S.
                if loop.time() - since >= YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    since = loop.time()
        finally:
            committer.cancel()
            if self._commit_wanted:  # last positions before leaving the group
                with contextlib.suppress(KafkaError):
                    await self.consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in self._commit_wanted.items()})
            await self.consumer.stop()

    async def _step(self) -> None:
        """Dispatch one request: the oldest handed back, else the next fetched. Fetches take at most
        as many records as there are idle workers (and ``INTAKE_BATCH``), so the backlog stays in Kafka."""
        consumer = self.consumer
        assert consumer is not None
        pool = self.pool
        if not pool.has_idle():
            if self.handoff is not None and self.handoff.wanted() and await self._hand_off(consumer):
                return
            try:  # a worker usually frees up within moments; pausing and resuming the fetcher costs more
                await asyncio.wait_for(pool.wait_idle(), PAUSE_AFTER_S)
            except TimeoutError:
                consumer.pause(*consumer.assignment())
                try:  # until a worker here frees up, or a peer has one for what waits here
                    while not pool.has_idle() and not (self.handoff and self.handoff.wanted()):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(pool.wait_idle(), RECHECK_S)
                finally:
                    consumer.resume(*consumer.assignment())
            return
        if self._redeliver:  # as many at once as there are idle workers: one commit for their claims
            count = min(len(self._redeliver), INTAKE_BATCH, max(1, pool.counts()["idle"]))
            await self._dispatch([self._redeliver.popleft() for _ in range(count)])
            return
        if self.waiting.count >= PARK_MAX:  # the rest of the backlog stays in Kafka
            self.waiting.left.clear()
            await self.waiting.left.wait()
            return
        wanted = max(1, min(INTAKE_BATCH, pool.counts()["idle"]))
        # While requests are parked, a run's end hands one back: come back for it soon.
        batch = await consumer.getmany(timeout_ms=10 if self.waiting else 200, max_records=wanted)
        self._pace_fetches(bool(batch))
        for tp, messages in batch.items():
            for message in messages:
                pending = await self._take(tp, message)
                if pending is not None:
                    self._redeliver.append(pending)

    async def _hand_off(self, consumer: AIOKafkaConsumer) -> bool:
        """No worker here is idle, a peer's is: hand it what waits here (handed back first, then
        fresh records); each offset is done once the store holds the request."""
        assert self.handoff is not None
        wanted, handed = self.handoff.wanted(), 0
        while self._redeliver and handed < wanted:
            handed += await self._give(self._redeliver.popleft())
        if handed < wanted:
            batch = await consumer.getmany(timeout_ms=10, max_records=min(INTAKE_BATCH, wanted - handed))
            for tp, messages in batch.items():
                for message in messages:
                    pending = await self._take(tp, message)
                    if pending is not None:
                        handed += await self._give(pending)
        return handed > 0

    async def _give(self, pending: Pending) -> bool:
        if await self.held(pending):  # parked: its persona's runs are at the limit over the deployment
            return False
        await self.handoff.give(pending)  # type: ignore[union-attr]
        self.done(pending.tp, pending.offset)
        return True

    def _pace_fetches(self, got_records: bool) -> None:
        """Poll the broker often while requests flow and rarely once they stop: a 5 ms fetch wait costs
        ~15 % of a core with nothing to do. After ``IDLE_AFTER_S`` without a record the wait grows to
        ``DAC_KAFKA_IDLE_FETCH_WAIT_MS``, and the first record back restores it; so only the first request
        after a quiet spell can wait that long. (aiokafka reads the wait from its fetcher per request.)"""
        fetcher = getattr(self.consumer, "_fetcher", None)
        if fetcher is None:
            return
        now = time.monotonic()
        if got_records:
            self._last_record = now
            wait = self.settings.fetch_max_wait_ms
        elif now - self._last_record >= IDLE_AFTER_S:
            wait = max(self.settings.fetch_max_wait_ms, self.settings.idle_fetch_max_wait_ms)
        else:
            return
        fetcher._fetch_max_wait_ms = wait

    async def _take(self, tp: TopicPartition, message: ConsumerRecord) -> Pending | None:
        """Decode one record; an unreadable one is dead-lettered with its reason and its offset passed."""
        self.offsets.add(tp, message.offset)
        try:
            request = decode_request(message.value or b"")
        except ProtocolError as exc:
            await self._dead_letter(tp, message.offset, message.key, f"{exc.code}: {exc.message}", message.value)
            return None
        produced = message.timestamp / 1000 if message.timestamp and message.timestamp > 0 else time.time()
        return Pending(request, tp, message.offset, produced, time.perf_counter())

    async def _dispatch(self, batch: list[Pending]) -> None:
        """Nothing one request holds may end intake: a request whose dispatch raised is handed back
        when the store or the broker is away (and intake waits a moment), else dead-lettered."""
        outage = False
        for pending, exc in reversed(await self.dispatch(batch)):
            if isinstance(exc, OUTAGES):
                self.redeliver(pending, front=True)
                outage = True
                continue
            log.error("dispatch of %s failed: %s", pending.request.execution_id, type(exc).__name__, exc_info=exc)
            key = pending.request.persona_id.encode()
            await self._dead_letter(
                pending.tp, pending.offset, key, f"dispatch_failed: {type(exc).__name__}", request=pending.request
            )
        if outage:
            await asyncio.sleep(OUTAGE_WAIT_S)

    async def _dead_letter(
        self,
        tp: TopicPartition | None,
        offset: int | None,
        key: bytes | None,
        reason: str,
        raw: bytes | None = None,
        request: ExecRequest | None = None,
    ) -> None:
        where = f"{tp.topic}:{offset}" if tp is not None else "a re-queued request"
        log.warning("dead-lettering the request at %s: %s", where, reason[:300])
        self.metrics.dead_letters.labels(reason.split(":", 1)[0]).inc()
        text = raw.decode("utf-8", errors="replace") if raw is not None else None
        dead = DeadLetter(error=reason, attempts=0, timestamp=time.time(), raw=text, request=request)
        self.dead_letters.add(dead)
        await self.bus.dead_letter(dead, key.decode("utf-8", errors="replace") if key else None)
        self.done(tp, offset)

    def done(self, tp: TopicPartition | None, offset: int | None) -> None:
        """Mark a request handled; its partition's commit position advances when nothing before it is
        still in flight. The commit itself runs on the committer task, so a worker's frame loop never
        waits on a broker round trip."""
        if tp is None or offset is None:
            return
        position = self.offsets.done(tp, offset)
        if position is not None and self._committed.get(tp, -1) < position:
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
                # Not retried: the next handled request commits a newer position anyway, and a
                # position kept across an outage may not fit the log the broker has afterwards.
                log.warning("offset commit failed: %s", type(exc).__name__)
                await asyncio.sleep(0.5)

    async def _revoked(self, partitions: set[TopicPartition]) -> None:
        """Partitions move to a peer (a rebalance): what was decided of them is committed now, while
        this consumer may still; what waits here from them (handed back, or parked for its persona's
        turn) is let go, uncommitted, for the new owner to read again; what is claimed and running
        stays this orchestrator's (the store says so, and the new owner's claim skips it)."""
        consumer = self.consumer
        decided = {tp: p for tp, p in self._commit_wanted.items() if tp in partitions}
        if consumer is not None and decided:
            try:
                await consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in decided.items()})
            except KafkaError as exc:
                log.warning("committing the revoked partitions' positions failed: %s", type(exc).__name__)
        for tp in partitions:
            self._commit_wanted.pop(tp, None)
            self._committed.pop(tp, None)
        self.offsets.forget(partitions)
        kept = [p for p in self._redeliver if p.tp is None or p.tp not in partitions]
        let_go = len(self._redeliver) - len(kept)
        self._redeliver = collections.deque(kept)
        let_go += self.waiting.let_go(partitions)
        if let_go:
            log.info("rebalance: %d waiting request(s) of revoked partitions left for their new owner", let_go)

    def forget_positions(self) -> None:
        """After a broker outage: drop every offset position learnt before it. The broker may now hold
        another log (one that lost its data begins again at 0), where an old position would skip new
        records; the consumer's own position is re-established by its group (earliest when none)."""
        self.offsets = OffsetTracker()
        self._committed.clear()
        self._commit_wanted.clear()

    def lag(self) -> int:
        return self._lag

    async def refresh_lag(self, max_age: float) -> None:
        """Measure the lag now unless a measurement is younger than ``max_age`` (a scaling controller
        reading the signals wants a backlog seen when it happens, not up to a period later). Measured
        from the broker's end offsets, since a paused consumer (backpressure) has no fetch metadata."""
        if time.monotonic() - self._lag_at < max_age:
            return
        async with self._lag_lock:
            if time.monotonic() - self._lag_at < max_age:
                return
            consumer = self.consumer
            if consumer is None or not consumer.assignment():
                self._lag = 0  # no partition here (a rebalance took them, or more orchestrators than them)
                return
            try:
                partitions = list(consumer.assignment())
                ends = await consumer.end_offsets(partitions)
                total = 0
                waiting = {}
                for tp in partitions:
                    position = self.offsets.position(tp) if tp in self.offsets.partitions() else None
                    if position is None:
                        position = await consumer.committed(tp) or 0
                    total += max(0, ends.get(tp, 0) - position)
                    if ends.get(tp, 0) > position:
                        waiting[tp] = position
                self._lag, self._lag_at = total, time.monotonic()
                await self.backlog.measure(waiting)
            except KafkaError as exc:
                log.debug("lag measurement failed: %s", type(exc).__name__)

    def oldest_wait(self) -> float:
        """Seconds the oldest request not yet finished with has waited since it was produced."""
        return self.backlog.age()

    async def measure_lag(self, interval: float = 2.0) -> None:
        """Requests on the exec topic not yet accepted by a worker, every ``interval``."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self.refresh_lag(interval / 2)
        finally:
            await self.backlog.close()
