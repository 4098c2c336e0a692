"""Keep the orchestrator's long-running tasks alive, and say which one is down.

Before this, a task that raised (intake on one bad record, say) simply ended: the process kept
answering HTTP and ``/healthz`` said ok while nothing was consumed. Here every such task runs under a
loop that logs the crash with its traceback, marks the component down (``/healthz`` answers 503 and
names it), waits with exponential backoff, and starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

log = logging.getLogger("dac.orchestrator.supervisor")


class Supervisor:
    def __init__(self, restarts: Counter, base_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self._restarts = restarts
        self._base, self._max = base_delay, max_delay
        self._tasks: list[asyncio.Task[None]] = []
        #: component -> why it is down (cleared when it is started again)
        self.down: dict[str, str] = {}

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._keep(name, factory), name=name))

    async def _keep(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        delay = self._base
        while True:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await factory()
                why = "returned unexpectedly"
                log.error("task %s %s; restarting in %.1fs", name, why, delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = f"crashed: {type(exc).__name__}"
                log.exception("task %s crashed; restarting in %.1fs", name, delay)
            self.down[name] = why
            self._restarts.labels(name).inc()
            if loop.time() - started > 60:
                delay = self._base  # it ran for a while: this is a new failure, not a crash loop
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max)
            self.down.pop(name, None)

    def cancel(self, name: str) -> None:
        """Stop one component for good (an orchestrator stepping down stops reading requests)."""
        for task in self._tasks:
            if task.get_name() == name:
                task.cancel()
        self.down[name] = "stopped"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
