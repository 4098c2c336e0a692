"""The composition root: every part of the orchestrator built once, each handed the collaborators it
uses (not this object), and their start and stop in order. The HTTP side (:mod:`.app`) serves it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiokafka.errors import KafkaError

from ..records import ExecRequest
from .cluster.membership import Membership
from .cluster.view import DeploymentView, Local, Report
from .config import Settings
from .dispatch.bus import Bus
from .dispatch.chains import Chains
from .dispatch.dispatcher import Dispatcher
from .dispatch.events import Events
from .dispatch.handoff import Handoff
from .dispatch.intake import Intake
from .dispatch.pool import Pool
from .dispatch.submit import Submitter
from .dispatch.workers import WorkerRegistry
from .ops.alarms import Alarms
from .ops.capacity import Capacity
from .ops.dead_letters import DeadLetters
from .ops.gc_tuning import keep_collections_short
from .ops.kafka_health import KafkaHealth
from .ops.metrics import Metrics
from .ops.supervisor import Supervisor
from .store import Store
from .team.changes import TeamChanges
from .team.credentials import Credentials
from .team.invites import Invites
from .team.logins import Logins
from .team.personas import Personas
from .team.vault import Vault

log = logging.getLogger("dac.orchestrator")
#: /healthz says 503 this long before a stepped-down orchestrator exits (load balancers notice)
STEP_DOWN_LINGER_S = 1.0


class Orchestrator:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        # The team's tables, held in memory by each orchestrator; a change through one reaches the rest.
        self.team = TeamChanges(self.store)
        self.vault = Vault(self.store, settings.master_keys, self.team.changed)
        self.personas = Personas(self.store, self.team.changed)
        self.credentials = Credentials(self.store, self.vault, self.team.changed)
        self.team.reload = self._load_team
        self.invites = Invites(self.store, self.vault)
        self.metrics = Metrics()
        self.bus = Bus(
            settings.kafka_bootstrap,
            settings.topics,
            self.store,
            self.metrics.kafka_dropped,
            max_held=settings.outbox_max_records,
            **settings.kafka_client(),
        )
        probe_s = settings.kafka_probe_ms / 1000
        self.kafka = KafkaHealth(self.bus.probe, probe_s, max(probe_s, 2.0), self.bus.describe)
        self.dead_letters = DeadLetters(self.store)
        self.events = Events(self.store, self.bus, self.metrics, self.dead_letters)
        self.submitter = Submitter(settings, self.store, self.vault, self.kafka, self.bus, self.events)
        self.chains = Chains(settings, self.store, self.submitter, self.bus)
        self.pool = Pool()
        self.intake = Intake(settings, self.pool, self.kafka, self.bus, self.metrics, self.dead_letters)
        self.capacity = Capacity(self.store, self.pool, self.intake.lag, self.intake.oldest_wait, self.intake.parked)
        self.registry = WorkerRegistry(settings, self.store, self.vault, self.metrics, self.pool, self.capacity)
        self.logins = Logins(self.pool, self.vault, lambda: self.membership.epoch)
        self.dispatcher = Dispatcher(
            settings,
            self.store,
            intake=self.intake,
            pool=self.pool,
            events=self.events,
            bus=self.bus,
            kafka=self.kafka,
            vault=self.vault,
            personas=self.personas,
            credentials=self.credentials,
            metrics=self.metrics,
        )
        # The loops among them, closed here: a request read goes to the dispatcher; a worker's frames
        # drive its runs and logins; an agent's events may chain; an end counts towards the alarms.
        self.intake.dispatch, self.intake.held = self.dispatcher.dispatch_many, self.dispatcher.held
        self.registry.dispatcher, self.registry.logins = self.dispatcher, self.logins
        self.events.on_event = self.chains.on_event
        self.supervisor = Supervisor(self.metrics.task_restarts)
        # The deployment's figures: this orchestrator's own, live, and each peer's last report.
        self.deployment = DeploymentView(
            Local(
                report=self._report,
                workers=self.pool.counts,
                lag=self.intake.lag,
                oldest_wait=self.intake.oldest_wait,
                failures=lambda: self.alarms.failure_rate(),
            )
        )
        self.membership = Membership(
            self.store,
            settings.orchestrator_name,
            settings.advertise_url or f"http://{settings.host}:{settings.port}",
            settings.orchestrator_lease_ms / 1000,
            self._step_down,
            self.pool.counts,
            self.deployment.encoded,
        )
        self.events.acting = self.registry.acting = self.membership.valid
        self.handoff = Handoff(
            self.store, self.pool, self.dispatcher.dispatch_many, self.membership.valid, self.metrics.handoffs
        )
        if store.shared:  # peers are possible only on a shared store
            self.intake.handoff = self.handoff
            self.handoff.peers_idle = lambda: self.membership.peers_idle
        self.membership.on_peers = self._peers_changed
        #: the process's exit code once it stopped: 4 when it stepped down (its lease was lost)
        self.exit_code = 0
        self.stopping = asyncio.Event()
        self.alarms = Alarms(
            self.deployment.workers,
            self.deployment.lag,
            self.deployment.oldest_wait,
            self.vault.claude_token_info,
            self.kafka.why_down,
            self.deployment.failures,
        )
        self.events.on_finished = self.alarms.finished
        #: executions by status, as the last scrape of /metrics read them (a query, so not in the collector)
        self.execution_counts: dict[str, int] = {}
        self.metrics.watch(
            lambda: self.execution_counts, self.registry.counts, self.intake.lag, self.intake.oldest_wait
        )
        self.metrics.watch_deployment(
            self.deployment.workers, self.deployment.lag, lambda: self.deployment.orchestrators
        )
        self.metrics.watch_gc()
        self.metrics.watch_claude_token(lambda: (info := self.vault.claude_token_info()) and info.expires_at)

    def _report(self) -> Report:
        failed, ended = self.alarms.failure_rate()
        return msgspec.structs.replace(
            self.capacity.local(), failed=failed, ended=ended, login_workers=self.logins.able()
        )

    def _peers_changed(self, peers: list[dict[str, Any]]) -> None:
        self.deployment.peers_changed(peers, self.membership.epoch)
        if self.store.shared:
            self.handoff.peers_changed(peers)

    async def load(self) -> None:
        """What start-up reads from the store: re-sealing after a key rotation, the bootstrap keys,
        and the tables every dispatch consults, held in memory."""
        settings = self.settings
        if len(settings.master_keys) > 1 and (resealed := await self.vault.reseal()):
            log.info("re-sealed %d secret(s) under the current master key", resealed)
        if settings.owner_api_key:
            await self.vault.adopt_api_key(settings.owner_api_key, "owner", "owner")
        if settings.worker_token:
            await self.vault.add_registration_token(settings.worker_token, uses=None)
        await self.team.load()

    async def _load_team(self) -> None:
        await self.vault.load()
        await self.personas.load()
        await self.credentials.load()

    async def start(self) -> None:
        """Load, connect to Kafka, adopt what a previous process left running, then run every loop."""
        await self.load()
        predecessors = await self.membership.join()
        await self.bus.start()
        for epoch in [None, *predecessors]:
            await self._take_over(epoch)
        await self._requeue_stored()
        supervisor = self.supervisor
        supervisor.start("intake", lambda: self.intake.run(**self.settings.kafka_client()))
        supervisor.start("reaper", self.registry.reap)
        supervisor.start("flush", self.events.flush_forever)
        supervisor.start("lag", self.intake.measure_lag)
        supervisor.start("kafka", self._watch_kafka)
        supervisor.start("loop", self.metrics.watch_loop)
        supervisor.start("worker-time", self.capacity.checkpoint_forever)
        supervisor.start("lease", self.membership.renew_forever)
        supervisor.start("takeover", self._take_over_forever)
        if self.store.shared:  # peers are possible: their requests and cancels
            supervisor.start("handoff", self.handoff.take_forever)
            supervisor.start("cancels", self.dispatcher.cancels_forever)
            supervisor.start("limits", self.dispatcher.limits.recheck_forever)
            supervisor.start("team", self.team.follow_forever)
        pool = self.pool
        supervisor.start("gc", lambda: keep_collections_short(lambda: len(pool.workers), lambda: pool.departed))
        log.info("orchestrator up on %s:%d", self.settings.host, self.settings.port)

    async def stop(self) -> None:
        await self.supervisor.stop()
        self.events.flush()
        await self.membership.leave()
        await self.bus.stop()
        await self.store.close()

    # --- among peers ------------------------------------------------------------------------------

    async def _take_over(self, epoch: int | None) -> None:
        """The executions of a gone orchestrator (``epoch``; None: rows from before owners) become ours."""
        adopted = await self.dispatcher.adopt_orphans(epoch)
        await self.capacity.closed_by(epoch)
        if adopted:
            log.info("took over %d running execution(s) of orchestrator epoch %s", adopted, epoch)

    async def _take_over_forever(self) -> None:
        interval = self.settings.orchestrator_lease_ms / 2000
        while True:
            await asyncio.sleep(interval)
            for epoch in await self.membership.claim_expired():
                log.warning("orchestrator epoch %d let its lease run out: taking over", epoch)
                await self._take_over(epoch)

    async def _step_down(self, why: str) -> None:
        """The lease is lost: stop acting at once (the events and the worker endpoint already refuse),
        close every worker socket so each dials a peer, and leave so a supervisor starts us afresh."""
        self.exit_code = 4
        self.supervisor.cancel("intake")
        await self.close_workers()
        asyncio.get_running_loop().call_later(STEP_DOWN_LINGER_S, self.stopping.set)

    async def close_workers(self) -> None:
        for worker in list(self.registry.workers.values()):
            worker.superseded = True  # shutting down: not a lost worker
            await worker.ws.close(code=1001, message=b"orchestrator restarting")

    async def _watch_kafka(self) -> None:
        """Probe the broker; while it answers, send what was held. When it comes back after an
        outage, produce the queued executions again: a broker that lost its log (restarted without
        persistent storage) lost their requests with it, and duplicates are skipped at dispatch."""
        interval = self.settings.kafka_probe_ms / 1000
        requeue_due = False
        while True:
            was_up = self.kafka.up
            up = await self.kafka.check()
            self.bus.broker_up = up
            if up and self.bus.held:
                try:
                    sent = await self.bus.drain()
                    log.info("sent %d held record(s) to kafka", sent)
                except KafkaError as exc:
                    log.warning("sending held records failed, will retry: %s", type(exc).__name__)
            if up and not was_up:
                self.intake.forget_positions()
                requeue_due = True
            if up and requeue_due:  # until it has worked: a failed attempt must not lose them
                try:
                    await asyncio.wait_for(self._requeue_stored(), timeout=max(interval, 5.0))
                    requeue_due = False
                except (KafkaError, TimeoutError) as exc:
                    log.warning("re-queueing stored executions failed, will retry: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    async def _requeue_stored(self) -> None:
        """Queued executions may have lost their Kafka request in a crash (a retry's backoff window):
        produce them again. Duplicates are harmless: dispatch is idempotent by id and generation."""
        for row in await self.store.executions_by_status("queued"):
            await self.bus.request(msgspec.json.decode(row["request"], type=ExecRequest))
