"""Dispatch: requests read together are claimed together, made durable once, then assigned.

Each request is claimed in the store with one statement (:meth:`Store.claim_execution`: atomic, so
of two orchestrators that read the same request exactly one goes on), the claims of a batch run
concurrently (over the pool's connections on PostgreSQL; inside one group transaction on SQLite),
one commit covers them all, and only then do the assigns go out: a worker never holds a run the
store does not know it holds, and the store round trips are paid per batch, not per request. A
batch is what intake read at once (at most the idle workers, at most ``INTAKE_BATCH``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from aiokafka.errors import KafkaError

from ...crypto import CryptoError
from ...protocol import Assign, ExecConfig
from ..store import StoreUnavailable
from ..team.claude_token import TokenExpired
from ..team.credentials import Unavailable
from ..team.vault import MissingCredential
from .leases import Active

if TYPE_CHECKING:
    from ..config import Settings
    from ..ops.metrics import Metrics
    from ..store import Store
    from ..team.credentials import Credentials
    from ..team.personas import Persona, Personas
    from ..team.vault import Vault
    from .events import Events
    from .intake import Intake
    from .leases import ActiveRuns
    from .limits import Concurrency
    from .pending import Pending
    from .pool import Pool

log = logging.getLogger("dac.orchestrator.dispatch")
#: claims given up on, remembered at most (each a request handed back while the store was slow)
LOST_CLAIMS_MAX = 100_000


@dataclass(eq=False)
class Claimed:
    """A request this orchestrator now holds in the store, with the worker reserved for it."""

    active: Active
    persona: Persona | None
    given: list[str]
    inserted: bool


class Assigning:
    """The dispatcher's half that takes requests to workers (a mixin, as :class:`.leases.Leases`)."""

    settings: Settings
    store: Store
    intake: Intake
    pool: Pool
    events: Events
    vault: Vault
    personas: Personas
    credentials: Credentials
    metrics: Metrics
    active: ActiveRuns
    #: claims under way per persona (their runs are not in ``active`` yet), for ``maxConcurrent``
    claiming: collections.Counter[str]
    limits: Concurrency  # each persona's maxConcurrent, over the deployment
    #: claims given up on while the store was slow (they may land yet), by execution: their tokens
    lost_claims: dict[str, str]
    _spawn: Callable[..., None]  # :meth:`.leases.Leases._spawn` (a stub here would shadow it)

    async def _accept_timeout(self, active: Active) -> None:
        raise NotImplementedError

    async def _requeue_undelivered(self, execution_id: str, why: str) -> None:
        raise NotImplementedError

    async def dispatch(self, pending: Pending) -> None:
        """One request (from a peer's handoff); what fails with it is raised."""
        for _, exc in await self.dispatch_many([pending]):
            raise exc

    async def dispatch_many(self, batch: list[Pending]) -> list[tuple[Pending, Exception]]:
        """Hand each request to an idle worker. Returned: the requests whose dispatch raised, with
        what it raised, for the caller to hand back (an outage) or dead-letter (anything else)."""
        if not self.events.acting():  # stepping down: its next owner reads the requests again
            return []
        results = await asyncio.gather(*(self._claim(p) for p in batch), return_exceptions=True)
        failed: list[tuple[Pending, Exception]] = []
        claims: list[Claimed] = []
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, Claimed):
                claims.append(result)
            elif isinstance(result, Exception):
                failed.append((pending, result))
            elif isinstance(result, BaseException):
                raise result
        if claims and not self.store.answers_durable:
            try:
                await self.store.commit()  # every claim durable before a worker can act on one
            except StoreUnavailable:
                pass  # a server-side store made each claim durable as it ran; later writes wait in its queue
        # Their secrets read together (a store round trip each, over the pool), then sent in order.
        opened = await asyncio.gather(*(self._environment(claim) for claim in claims), return_exceptions=True)
        for claim, env in zip(claims, opened, strict=True):
            if isinstance(env, BaseException) and not isinstance(env, Exception):
                raise env
            try:
                await self._assign(claim, env)
            except Exception:  # its assign went out: the run is the worker's, this is only logged
                log.exception("after assigning %s", claim.active.request.execution_id)
        return failed

    async def _environment(self, claim: Claimed) -> dict[str, str]:
        self.credentials.check_usable(claim.given)
        return await self.vault.environment_for(claim.given)

    async def _claim(self, pending: Pending) -> Claimed | None:
        request = pending.request
        if request.execution_id in self.active:  # read again (a rebalance) while it runs here
            self.intake.done(pending.tp, pending.offset)
            return None
        persona_id = request.persona_id
        persona = self.personas.get(persona_id)
        with self._counted(persona_id):  # from here, so the batch's next claims see this one
            if await self.limits.full(pending, persona):
                await self._park(pending)
                return None
            worker = self.pool.take_idle()
            if worker is None:
                self.intake.redeliver(pending, front=True)
                return None
            given = self.personas.credentials_for(persona_id, request.credentials)
            # A retry after a claim whose answer was lost (the store was slow) carries its token.
            token = self.lost_claims.pop(request.execution_id, None) or secrets.token_hex(8)
            try:
                claimed = await self.store.claim_execution(
                    msgspec.json.encode(request),
                    request.execution_id,
                    persona_id,
                    request.attempt,
                    request.generation,
                    worker_id=worker.worker_id,
                    given_credentials=json.dumps(given) if given else None,  # names only, for who-used-what
                    claim=token,
                )
            except BaseException as exc:
                self.pool.mark_idle(worker)
                if isinstance(exc, StoreUnavailable) and len(self.lost_claims) < LOST_CLAIMS_MAX:
                    self.lost_claims[request.execution_id] = token  # it may land yet
                raise
        if claimed is None:
            self.pool.mark_idle(worker)
            log.debug("%s was taken or decided elsewhere: skipped", request.execution_id)
            self.intake.done(pending.tp, pending.offset)
            return None
        active = Active(pending, worker)
        self.active[request.execution_id] = active
        worker.execution_id = request.execution_id
        return Claimed(active, persona, given, inserted=claimed == "inserted")

    @contextlib.contextmanager
    def _counted(self, persona_id: str) -> Iterator[None]:
        """A claim of ``persona_id`` under way, for its ``maxConcurrent``."""
        self.claiming[persona_id] += 1
        try:
            yield
        finally:
            self.claiming[persona_id] -= 1
            if self.claiming[persona_id] <= 0:
                del self.claiming[persona_id]

    async def held(self, pending: Pending) -> bool:
        """Before a request is handed off to a peer: parked instead (True) when its persona is at its
        limit over the deployment."""
        persona_id = pending.request.persona_id
        with self._counted(persona_id):
            if not await self.limits.full(pending, self.personas.get(persona_id)):
                return False
        await self._park(pending)
        return True

    async def _park(self, pending: Pending) -> None:
        """Its persona is at ``maxConcurrent``: visible (queued) while it waits its turn."""
        request = pending.request
        encoded = msgspec.json.encode(request)
        if await self.store.insert_execution(
            request.execution_id, request.persona_id, encoded, request.attempt, request.generation
        ):
            await self.events.lifecycle(request, "queued")
        self.intake.park(pending)

    async def _unclaim(self, claim: Claimed, exc: Exception) -> None:
        """Claimed, not sent: the store or the broker away (queued again, and read again), or
        anything else (failed and dead-lettered, with the exception's type as its reason)."""
        active = claim.active
        request, pending, worker = active.request, active.pending, active.worker
        self.active.pop(request.execution_id, None)
        if worker is not None:
            self.pool.mark_idle(worker)
        if isinstance(exc, (StoreUnavailable, KafkaError, OSError)):
            self.store.update_execution(request.execution_id, status="queued", worker_id=None)
            self.intake.redeliver(pending, front=True)
            return
        log.error("dispatch of %s failed: %s", request.execution_id, type(exc).__name__, exc_info=exc)
        reason = f"dispatch_failed: {type(exc).__name__}"
        await self.events.finish(request, "failed", reason=reason, dead_letter=True)
        self.intake.done(pending.tp, pending.offset)

    async def _assign(self, claim: Claimed, opened: dict[str, str] | Exception) -> None:
        """Send one claimed request its assign; ``opened``: its secrets, or why they could not be."""
        active, persona = claim.active, claim.persona
        pending, request, worker = active.pending, active.request, active.worker
        assert worker is not None
        events = self.events
        try:
            if isinstance(opened, Exception):
                raise opened
            env = opened
        except (MissingCredential, Unavailable, TokenExpired, CryptoError) as exc:
            self.active.pop(request.execution_id, None)
            self.pool.mark_idle(worker)
            if claim.inserted:
                await events.lifecycle(request, "queued")
            if isinstance(exc, MissingCredential):
                reason = f"unknown credential {exc}"
            elif isinstance(exc, TokenExpired):
                reason = f"claude_token_expired: {exc}"
            else:
                reason = str(exc)
            await events.finish(request, "failed", reason=reason, dead_letter=True)
            self.intake.done(pending.tp, pending.offset)
            return
        except Exception as exc:  # one request's failure is that request's alone
            await self._unclaim(claim, exc)
            return
        self.credentials.touch(claim.given)
        s = self.settings
        assign = Assign(
            execution_id=request.execution_id,
            persona_id=request.persona_id,
            prompt=request.prompt,
            env=env,
            config=ExecConfig(
                timeout_ms=request.timeout_ms or (persona and persona.timeout_ms) or s.default_timeout_ms,
                max_output_bytes=request.max_output_bytes
                or (persona and persona.max_output_bytes)
                or s.default_max_output_bytes,
                inactivity_timeout_ms=s.inactivity_timeout_ms,
            ),
            not_after=time.time() + s.accept_timeout_ms / 1000,
        )
        sent = await worker.send(assign)
        env.clear()
        metrics = self.metrics
        metrics.dispatch_latency.observe(max(0.0, time.time() - pending.produced_at))
        if pending.read_at:
            metrics.dispatch_handling.observe(time.perf_counter() - pending.read_at)
        if claim.inserted:
            await events.lifecycle(request, "queued")
        await events.lifecycle(request, "dispatched", worker_id=worker.worker_id)
        active.recorded.set()
        if not sent:
            await self._requeue_undelivered(request.execution_id, "worker socket closed during assign")
            return
        loop = asyncio.get_running_loop()
        active.timer = loop.call_later(s.accept_timeout_ms / 1000, self._spawn, self._accept_timeout, active)
