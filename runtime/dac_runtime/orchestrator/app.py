"""Wire the orchestrator together: store, vault, Kafka bus and intake, worker registry, HTTP API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from aiokafka.errors import KafkaError

from ..records import ExecRequest
from .alarms import Alarms
from .api import ORCH_KEY, middleware, routes
from .bus import Bus
from .capacity import Capacity
from .chains import Chains
from .config import Settings
from .credentials import Credentials
from .dead_letters import DeadLetters
from .dispatch import Dispatcher
from .events import Events
from .gc_tuning import keep_collections_short
from .intake import Intake
from .invites import Invites
from .kafka_health import KafkaHealth
from .logins import Logins
from .metrics import Metrics
from .personas import Personas
from .store import Store
from .submit import Submitter
from .supervisor import Supervisor
from .vault import Vault
from .workers import WorkerRegistry

log = logging.getLogger("dac.orchestrator")


class Orchestrator:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.vault = Vault(self.store, settings.master_keys)
        self.personas = Personas(self.store)
        self.credentials = Credentials(self.store, self.vault)
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
        self.events = Events(self)
        self.dead_letters = DeadLetters(self.store)
        self.submitter = Submitter(settings, self.store, self.vault, self.kafka, self.bus, self.events)
        self.chains = Chains(settings, self.store, self.submitter, self.bus)
        self.registry = WorkerRegistry(self)
        self.logins = Logins(self.registry, self.vault)
        self.dispatcher = Dispatcher(self)
        self.intake = Intake(self)
        self.supervisor = Supervisor(self.metrics.task_restarts)
        self.capacity = Capacity(
            self.store, self.registry.pool, self.intake.lag, self.intake.oldest_wait, self.intake.parked
        )
        self.alarms = Alarms(
            self.registry.counts,
            self.intake.lag,
            self.intake.oldest_wait,
            self.vault.claude_token_info,
            self.kafka.why_down,
        )
        #: executions by status, as the last scrape of /metrics read them (a query, so not in the collector)
        self.execution_counts: dict[str, int] = {}
        self.metrics.watch(
            lambda: self.execution_counts, self.registry.counts, self.intake.lag, self.intake.oldest_wait
        )
        self.metrics.watch_gc()
        self.metrics.watch_claude_token(lambda: (info := self.vault.claude_token_info()) and info.expires_at)

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
        await self.vault.load()
        await self.personas.load()
        await self.credentials.load()
        await self.capacity.load()

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.load()
        await self.bus.start()
        await self.dispatcher.adopt_orphans()
        await self._requeue_stored()
        supervisor = self.supervisor
        supervisor.start("intake", lambda: self.intake.run(**self.settings.kafka_client()))
        supervisor.start("reaper", self.registry.reap)
        supervisor.start("flush", self.events.flush_forever)
        supervisor.start("lag", self.intake.measure_lag)
        supervisor.start("kafka", self._watch_kafka)
        supervisor.start("loop", self.metrics.watch_loop)
        supervisor.start("worker-time", self.capacity.checkpoint_forever)
        pool = self.registry.pool
        supervisor.start("gc", lambda: keep_collections_short(lambda: len(pool.workers), lambda: pool.departed))
        log.info("orchestrator up on %s:%d", self.settings.host, self.settings.port)
        yield
        await supervisor.stop()
        self.events.flush()
        await self.bus.stop()
        await self.store.close()

    async def _close_workers(self, app: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for open handlers, so live sockets don't stall exit.
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

    def app(self) -> web.Application:
        app = web.Application(middlewares=[middleware], client_max_size=self.settings.max_body_bytes)
        app[ORCH_KEY] = self
        app.add_routes(routes())
        try:
            from . import console  # jinja2 comes with the orchestrator extra
        except ImportError as exc:
            log.warning("the console is off: %s (install dac-runtime[orchestrator])", exc)
        else:
            app[console.SESSIONS_KEY] = console.Sessions(self.store, self.vault)
            app.add_routes(console.routes())
        app.router.add_get("/ws/worker", self.registry.handle)
        app.cleanup_ctx.append(self._lifespan)
        app.on_shutdown.append(self._close_workers)
        return app
