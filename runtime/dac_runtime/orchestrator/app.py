"""The orchestrator's HTTP side: the API, the console and the worker endpoint over one aiohttp
application, whose lifespan starts and stops the orchestrator (:mod:`.core`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .api import ORCH_KEY, middleware, routes
from .core import Orchestrator

log = logging.getLogger("dac.orchestrator")


def application(orch: Orchestrator) -> web.Application:
    app = web.Application(middlewares=[middleware], client_max_size=orch.settings.max_body_bytes)
    app[ORCH_KEY] = orch
    app.add_routes(routes())
    try:
        from . import console  # jinja2 comes with the orchestrator extra
    except ImportError as exc:
        log.warning("the console is off: %s (install dac-runtime[orchestrator])", exc)
    else:
        app[console.SESSIONS_KEY] = console.Sessions(orch.store, orch.vault)
        app.add_routes(console.routes())
    app.router.add_get("/ws/worker", orch.registry.handle)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        await orch.start()
        yield
        await orch.stop()

    async def close_workers(app: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for open handlers, so live sockets don't stall exit.
        await orch.close_workers()

    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(close_workers)
    return app
