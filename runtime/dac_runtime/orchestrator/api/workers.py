"""Workers: the pool as the orchestrator sees it, registration tokens, and the runtime wheel new
machines install."""

from __future__ import annotations

import re
import time
from typing import Annotated

import msgspec
from aiohttp import web

from ...crypto import new_token
from .common import ORCH_KEY, ApiError, Body, decode_body

BUNDLE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.whl")


class WorkerTokenBody(Body):
    uses: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)] = 24 * 3600


async def list_workers(request: web.Request) -> web.Response:
    """Every worker of the deployment: this orchestrator's own as its pool sees them, and those
    connected to its peers as the store knows them (executing while the store has them on a run)."""
    orch = request.app[ORCH_KEY]
    name = orch.settings.orchestrator_name
    workers = [{**w.describe(), "orchestrator": name} for w in orch.registry.workers.values()]
    if orch.store.shared:  # peers may hold workers too
        here = {w["workerId"] for w in workers}
        for w in await orch.store.workers_elsewhere():
            if w["workerId"] not in here:
                workers.append({**w, "state": "executing" if w["executionId"] else "idle"})
    return web.json_response({"workers": workers})


async def create_worker_token(request: web.Request) -> web.Response:
    """A registration token for machines booted with it in their user data: limited uses, short life,
    exchanged on the worker's first hello for a per-worker credential, so nothing long-lived rides along."""
    body = await decode_body(request, WorkerTokenBody, empty_ok=True)
    token = new_token("dacr_")
    await request.app[ORCH_KEY].vault.add_registration_token(token, uses=body.uses, ttl_s=body.ttl_seconds)
    expires = time.time() + body.ttl_seconds
    return web.json_response({"token": token, "uses": body.uses, "expiresAt": expires}, status=201)


async def get_bundle(request: web.Request) -> web.StreamResponse:
    """The runtime wheel that new worker machines install (public: code, not secrets; the machine checks
    its sha256 from its user data). Served only when DAC_BUNDLE_DIR is set, and only ``*.whl`` files."""
    directory = request.app[ORCH_KEY].settings.bundle_dir
    name = request.match_info["name"]
    if directory is None or not BUNDLE_NAME.fullmatch(name) or not (directory / name).is_file():
        raise ApiError(404, "not_found", f"no bundle {name!r}")
    return web.FileResponse(directory / name, headers={"Content-Type": "application/octet-stream"})
