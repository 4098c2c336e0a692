"""What a host application holds: an executor per persona (local, a deployment over Kafka or HTTP, or
hybrid), handlers for persona events that hear local and cloud runs alike, and, on every execution,
where it ran.

A host app written against :class:`Host` runs unchanged whichever executors it is given:

    host = Host(HybridExecutor(cloud=kafka, local=LocalExecutor()), personas={"reviewer": local})
    host.on("manual_review", ask_a_human)
    execution = await host.execute("planner", "...")
    async for item in execution: ...           # the same items, in the same order, in every mode
    print(execution.mode, await execution.wait())

Chaining (``persona_action``) is the orchestrator's, for cloud runs (``[limits] chain-max-depth``):
it works with no host listening, and its limits hold for every client. A host sees the chain through
its events (``persona_action_started`` / ``persona_action_refused``) and the executions' views.
``reply`` answers a ``user_message`` or ``manual_review`` with a follow-up execution of the same
persona that carries the question's context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..client import Client, ClientError, Output, Result

log = logging.getLogger("dac.host")
Handler = Callable[["HostExecution", Output], Any]
#: Items a HostExecution keeps for an application that has not read them yet.
MAX_BUFFERED = 10_000


class HostExecution:
    """An execution as the host app sees it, whichever executor ran it. ``mode``: ``local``/``cloud``."""

    def __init__(self, inner: Any, persona_id: str, prompt: str, mode: str, host: Host) -> None:
        self.inner, self.id, self.persona_id, self.prompt, self.mode = inner, inner.id, persona_id, prompt, mode
        self._host = host
        self._items: asyncio.Queue[Output | None] = asyncio.Queue()
        self._dropped = 0
        self._pump = asyncio.get_running_loop().create_task(self._run(), name=f"host-{self.id}")

    def __repr__(self) -> str:
        return f"HostExecution({self.id!r}, mode={self.mode!r})"

    async def _run(self) -> None:
        """Read the execution's stream whether or not the app does: handlers hear events either way."""
        try:
            async for item in self.inner:
                if item.kind == "event":
                    await self._host._dispatch(self, item)
                if self._items.qsize() < MAX_BUFFERED:
                    self._items.put_nowait(item)
                else:
                    self._dropped += 1
        except ClientError as exc:
            log.warning("the stream of %s ended early: %s", self.id, exc)
        finally:
            self._items.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Output]:
        while (item := await self._items.get()) is not None:
            yield item
        if self._dropped:
            raise ClientError(f"{self.id}: {self._dropped} items were dropped, nothing read them")

    async def wait(self) -> Result:
        result: Result = await self.inner.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._pump)  # every handler has run once the result is in hand
        return result

    async def cancel(self) -> None:
        await self.inner.cancel()


class Host:
    """``default`` runs every persona not named in ``personas``; ``event_bus`` (if given) receives the
    payload of each ``emit_event`` an agent sends, as the host's own bus would."""

    def __init__(
        self,
        default: Any,
        personas: dict[str, Any] | None = None,
        *,
        event_bus: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.default, self.personas = default, dict(personas or {})
        self._handlers: dict[str, list[Handler]] = {}
        if event_bus is not None:
            self.on("emit_event", lambda execution, item: event_bus(item.payload))

    def executor_for(self, persona_id: str) -> Any:
        return self.personas.get(persona_id, self.default)

    def on(self, event_type: str, handler: Handler) -> None:
        """``handler(execution, item)`` (sync or async) for each ``event_type`` event (``"*"``: all)."""
        self._handlers.setdefault(event_type, []).append(handler)

    async def execute(self, persona_id: str, prompt: str, **options: Any) -> HostExecution:
        executor = self.executor_for(persona_id)
        if isinstance(executor, HybridExecutor):
            inner, mode = await executor.choose_and_execute(persona_id, prompt, **options)
        else:
            inner, mode = await executor.execute(persona_id, prompt, **options), _mode_of(executor)
        return HostExecution(inner, persona_id, prompt, mode, self)

    async def reply(self, to: HostExecution, question: Output, answer: str, **options: Any) -> HostExecution:
        """Answer a ``user_message``/``manual_review``: a follow-up run of the same persona whose prompt
        holds the original request, what the agent asked, and the answer."""
        asked = question.payload.get("message") or question.payload.get("question") or question.payload
        prompt = f"{to.prompt}\n\n[Earlier run {to.id} stopped for {question.event_type}: {asked}]\n[Answer: {answer}]"
        metadata = dict(options.pop("metadata", None) or {}) | {"dac.reply-to": to.id}
        return await self.execute(to.persona_id, prompt, metadata=metadata, **options)

    async def _dispatch(self, execution: HostExecution, item: Output) -> None:
        for handler in self._handlers.get(item.event_type or "", []) + self._handlers.get("*", []):
            try:
                outcome = handler(execution, item)
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:  # the host app's bug: said, and the stream goes on
                log.exception("handler for %s failed", item.event_type)


def _mode_of(executor: Any) -> str:
    return "local" if getattr(executor, "mode", "cloud") == "local" else "cloud"


class HybridExecutor:
    """Cloud when the deployment answers and has a worker online, local otherwise; the choice is on the
    execution (``mode``, and ``dac.mode`` in a cloud run's metadata).

    A run already queued in the cloud when the deployment goes away stays there: its request is in
    Kafka and runs when the deployment is back (running it here as well could run it twice). New
    runs go local until a probe (every ``recheck_s``) finds the deployment again."""

    mode = "hybrid"

    def __init__(
        self,
        cloud: Any,
        local: Any,
        *,
        api: Client | None = None,
        probe: Callable[[], Awaitable[bool]] | None = None,
        recheck_s: float = 5.0,
    ) -> None:
        if probe is None and api is None:
            api = cloud if isinstance(cloud, Client) else getattr(cloud, "_api", None)
            if api is None:
                raise ValueError("HybridExecutor needs api= (a Client of the deployment) or probe= to tell it is up")
        self.cloud, self.local, self._api = cloud, local, api
        self._probe = probe or self._healthy
        self._recheck_s = recheck_s
        self._known: tuple[float, bool] | None = None

    async def _healthy(self) -> bool:
        assert self._api is not None
        try:
            body = await asyncio.wait_for(self._api.health(), 3)
        except (TimeoutError, ClientError, OSError):
            return False
        # The deployment's workers (any orchestrator of several may answer); an older one says its own.
        workers = (body.get("deployment") or {}).get("workers") or body.get("workers") or {}
        return body.get("status") == "ok" and workers.get("idle", 0) + workers.get("executing", 0) > 0

    async def available(self) -> bool:
        now = time.monotonic()
        if self._known is None or now - self._known[0] >= self._recheck_s:
            self._known = (now, await self._probe())
        return self._known[1]

    async def choose_and_execute(self, persona_id: str, prompt: str, **options: Any) -> tuple[Any, str]:
        if await self.available():
            metadata = dict(options.pop("metadata", None) or {}) | {"dac.mode": "cloud"}
            try:
                return await self.cloud.execute(persona_id, prompt, metadata=metadata, **options), "cloud"
            except (ClientError, OSError) as exc:  # gone between the probe and the call
                log.warning("cloud refused %s (%s); running it here", persona_id, exc)
                self._known = (time.monotonic(), False)
        return await self.local.execute(persona_id, prompt, **options), "local"

    async def execute(self, persona_id: str, prompt: str, **options: Any) -> Any:
        inner, mode = await self.choose_and_execute(persona_id, prompt, **options)
        inner.mode = mode
        return inner
