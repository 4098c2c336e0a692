"""A deployment's workers between deploys: scale to a count, burst one-job workers, read a worker's
log, sweep what a lost state file left. Each goes through the same engine as ``deploy``."""

from __future__ import annotations

import asyncio

from .engine import DeployError, Deployment, OnProgress, context_for, deploy_async, provider_for, spec_of
from .membership import membership
from .providers.base import ProviderError
from .providers.fly_api import FlyAPI, fly_token
from .providers.fly_burst import burst
from .spec import DeploySpec, load_spec
from .state import StateStore


async def sweep_async(spec: DeploySpec) -> list[str]:
    """Delete, by tag, name and topic prefix, whatever the deployment left in its cloud, recorded or not
    (a lost or deleted state file). Returns what was removed. The local target has nothing to sweep."""
    sweep = getattr(provider_for(spec.provider), "sweep", None)
    if sweep is None:
        return []
    try:
        return await sweep(spec)
    except ProviderError as exc:
        raise DeployError(f"sweep stopped, run it again to finish: {exc}", exc.log_path) from None


async def worker_log_async(
    name: str, worker: str, lines: int = 200, store: StateStore | None = None, boot: bool = False
) -> str:
    """The last ``lines`` of one worker's own log: its log file locally, its journal over SSH in the cloud.
    ``worker`` is the plan's name (``worker-2``) or the machine's (``dac-prod-worker-2``)."""
    store = store or StateStore()
    if store.deployment(name) is None and (joined := membership(store, name)) is not None:
        return Deployment(name, "joined", joined.url, joined.api_key, store.root)
    spec = spec_of(store, name)
    ctx = context_for(store, spec)
    workers = [r for r in ctx.resources.values() if r.kind == "worker"]
    found = [r for r in workers if worker in (r.name, r.details.get("droplet"), r.details.get("worker_id"))]
    if not found:
        known = ", ".join(sorted(r.name for r in workers)) or "none"
        raise DeployError(f"no worker named {worker!r} in {name} (known: {known})")
    try:
        return await provider_for(spec.provider).worker_log(ctx, found[0], lines, boot)
    except ProviderError as exc:
        raise DeployError(str(exc), exc.log_path) from None


async def scale_async(
    name: str,
    workers: int,
    on_progress: OnProgress | None = None,
    store: StateStore | None = None,
    *,
    only_workers: bool = False,
) -> Deployment:
    """Set the deployment's worker count: new workers are started and awaited, surplus ones drained
    (each finishes its execution) and removed. The rest of the deployment is checked and left alone
    (or, with ``only_workers``, not looked at)."""
    store = store or StateStore()
    spec = spec_of(store, name)
    return await deploy_async(load_spec(spec.to_dict(), workers=workers), on_progress, store, only_workers=only_workers)


def scale(
    name: str, workers: int, on_progress: OnProgress | None = None, store: StateStore | None = None
) -> Deployment:
    return asyncio.run(scale_async(name, workers, on_progress, store))


async def burst_async(name: str, count: int, store: StateStore | None = None) -> list[str]:
    """Add ``count`` one-job workers on Fly Machines to a cloud deployment; each takes one execution and
    is destroyed. Returns their machine ids once every one has said hello."""
    store = store or StateStore()
    spec = spec_of(store, name)
    if spec.provider != "cloud":
        raise DeployError(f"burst workers run on Fly Machines: {name!r} is a {spec.provider!r} deployment")
    ctx = context_for(store, spec)
    token = fly_token()
    if not token or "fly-app" not in ctx.resources:
        raise DeployError("burst workers need FLY_API_TOKEN and a deployed orchestrator (run deploy)")
    try:
        async with FlyAPI(token) as api:
            return await burst(ctx, api, count, float(spec.digitalocean.ready_timeout_s))
    except ProviderError as exc:  # FlyError included
        raise DeployError(str(exc), exc.log_path) from None
