"""apply and destroy: ordering, concurrency, idempotency, resume, progress events.

``deploy`` compares the plan with the state store: a recorded resource that is still healthy is left
alone, a dead or missing one is (re)created, one no longer planned is removed. Every resource is
recorded the moment it exists, so a deploy that fails or is killed half-way leaves state that the next
``deploy`` resumes from and ``destroy`` cleans up. The engine never knows which target it drives.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dac_runtime.crypto import new_token

from .client import Client, ClientError
from .membership import membership, memberships
from .persona_files import load_persona_files
from .plan import Desired, levels, plan
from .providers.base import Context, LoggedError, Provider, ProviderError, Resource
from .providers.cloud import CloudProvider
from .providers.local import LocalProvider
from .providers.pulumi_stack import PulumiProvider
from .runtime_env import Secrets
from .spec import DeploySpec, load_spec
from .state import StateStore

StepState = Literal["start", "replacing", "created", "unchanged", "removed", "failed", "done"]


@dataclass(frozen=True)
class Progress:
    """One step's news, for a progress display: ``(step/total) name: state``."""

    step: int
    total: int
    name: str
    state: StepState
    elapsed: float
    detail: str = ""
    log_path: str | None = None


OnProgress = Callable[[Progress], None]


class DeployError(LoggedError):
    """A deploy or destroy step failed. The state store still knows every resource created so far."""


@dataclass
class Deployment:
    """Where a deployment's orchestrator answers, and the owner key to talk to it."""

    name: str
    provider: str
    url: str
    api_key: str = field(repr=False)
    directory: Path
    #: every orchestrator's URL, ``url`` first (a client moves to the next when one goes away)
    urls: tuple[str, ...] = ()

    def client(self, **kwargs: Any) -> Client:
        return Client([self.url, *self.urls], self.api_key, **kwargs)


def provider_for(name: str) -> Provider:
    if name == "local":
        return LocalProvider()
    if name == "cloud":
        return CloudProvider()
    if name == "pulumi":
        return PulumiProvider()
    raise DeployError(f"provider {name!r} is not available yet")


def secrets_for(store: StateStore, name: str) -> Secrets:
    return Secrets(
        master_key=store.secret(name, "master-key"),
        owner_api_key=store.secret(name, "owner-api-key", lambda: new_token("dac_")),
        worker_token=store.secret(name, "worker-token", lambda: new_token("dacr_")),
    )


def context_for(store: StateStore, spec: DeploySpec) -> Context:
    resources = {r.name: r for r in store.resources(spec.name)}
    return Context(spec, secrets_for(store, spec.name), store.deployment_dir(spec.name), resources)


class _Run:
    """One deploy or destroy: numbers the steps and reports them."""

    def __init__(self, total: int, on_progress: OnProgress | None) -> None:
        self.total, self.on_progress, self.started, self.step = total, on_progress, time.monotonic(), 0

    def next(self) -> int:
        self.step += 1
        return self.step

    def emit(self, step: int, name: str, state: StepState, detail: str = "", log: Path | None = None) -> None:
        if self.on_progress is not None:
            elapsed = time.monotonic() - self.started
            self.on_progress(Progress(step, self.total, name, state, elapsed, detail, str(log) if log else None))


async def _every(steps: Iterable[Awaitable[None]]) -> None:
    """Run the steps together and let each finish (so what succeeded is recorded), then raise the first error."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


async def _converge(store: StateStore, ctx: Context, provider: Provider, run: _Run, desired: list[Desired]) -> None:
    replaced: set[str] = set()
    # Orchestrators are replaced one at a time (a new runtime, a dead one): while one drains and its
    # successor starts, the others hold its workers and answer its clients (a rolling upgrade).
    rolling = asyncio.Lock()

    async def one(item: Desired) -> None:
        step = run.next()
        run.emit(step, item.name, "start")
        recorded = ctx.resources.get(item.name)
        update = False
        if recorded is not None and not replaced.intersection(item.follows):
            health = await provider.query(ctx, recorded)
            if health.ok:
                run.emit(step, item.name, "unchanged")
                return
            update = health.update
            if item.kind == "orchestrator":
                run.emit(step, item.name, "replacing", health.detail)
        if recorded is not None and item.kind == "orchestrator":
            async with rolling:
                await replace_one(step, item, recorded, update)
        else:
            await replace_one(step, item, recorded, update)

    async def replace_one(step: int, item: Desired, recorded: Resource | None, update: bool) -> None:
        if recorded is not None and not update:  # dead or stale: clear what is left of it before starting anew
            await provider.delete(ctx, recorded)
        try:
            resource = await provider.create(ctx, item)
        except ProviderError as exc:
            run.emit(step, item.name, "failed", str(exc), exc.log_path)
            raise
        store.record(ctx.spec.name, resource)
        ctx.resources[item.name] = resource
        replaced.add(item.name)
        run.emit(step, item.name, "created", resource.id)

    for wave in levels(desired):
        await _every(one(item) for item in wave)


def asleep(resource: Resource) -> bool:
    """A worker put to sleep by a scale-down (``scaling.sleep``): kept, powered off, woken by the next scale-up."""
    return resource.kind == "worker" and bool(resource.details.get("asleep"))


async def _remove(store: StateStore, ctx: Context, provider: Provider, run: _Run, extra: list[Resource]) -> None:
    sleep = getattr(provider, "sleep", None) if ctx.spec.scaling.sleep else None

    async def one(resource: Resource) -> None:
        step = run.next()
        run.emit(step, resource.name, "start", "draining" if resource.kind == "worker" else "")
        if sleep is not None and resource.kind == "worker":
            await sleep(ctx, resource)  # drained (its execution finishes), then powered off
            details = {**resource.details, "asleep": True}
            sleeping = Resource(resource.kind, resource.name, resource.id, resource.created, details)
            store.record(ctx.spec.name, sleeping)
            ctx.resources[resource.name] = sleeping
            run.emit(step, resource.name, "done", "asleep (powered off)")
            return
        await provider.delete(ctx, resource, drain=True)
        store.unrecord(ctx.spec.name, resource.kind, resource.name)
        ctx.resources.pop(resource.name, None)
        run.emit(step, resource.name, "removed")

    await _every(one(r) for r in extra)


def _controller_owns_size(store: StateStore, spec: DeploySpec, provider: Provider) -> bool:
    """A controller on its own machine sizes the pool: a re-deploy keeps the size it chose."""
    hosted = any(r.kind == "autoscaler" for r in store.resources(spec.name))
    return hosted and spec.scaling.with_deployment and hasattr(provider, "workers_in_cloud")


async def _size_in_cloud(store: StateStore, spec: DeploySpec) -> int:
    awake = await adopt_workers_async(spec.name, store)
    return min(spec.scaling.max_workers, max(spec.scaling.min_workers, awake))


async def deploy_async(
    spec: DeploySpec,
    on_progress: OnProgress | None = None,
    store: StateStore | None = None,
    *,
    only_workers: bool = False,
) -> Deployment:
    """Bring the deployment to what ``spec`` says; safe to repeat, and it heals what died.

    ``only_workers`` converges the workers alone (the scaling controller's path: the orchestrator,
    topics and the rest are neither queried nor touched, so a controller needs no Kafka access and
    no credentials beyond the workers' cloud)."""
    store = store or StateStore()
    with store.lock(spec.name):
        existing = store.deployment(spec.name)
        if existing is not None and existing["provider"] != spec.provider:
            raise DeployError(
                f"deployment {spec.name!r} already exists with provider {existing['provider']!r};"
                f" destroy it first or choose another name"
            )
        provider = provider_for(spec.provider)
        if not only_workers and existing is not None and _controller_owns_size(store, spec, provider):
            spec = load_spec(spec.to_dict(), workers=await _size_in_cloud(store, spec))
        desired = plan(spec)
        if only_workers:
            desired = [replace(d, after=()) for d in desired if d.kind == "worker"]
        ctx = context_for(store, spec)
        problems = provider.preflight(ctx)
        if problems:
            raise DeployError("; ".join(problems))
        wanted = {d.name for d in desired}
        # Sleeping workers stay while the spec wants sleep; otherwise they go like any other extra.
        extra = [
            r
            for r in ctx.resources.values()
            if r.name not in wanted
            and not (spec.scaling.sleep and asleep(r))
            and not (only_workers and r.kind != "worker")
        ]
        personas = bool(spec.personas) and not only_workers
        run = _Run(len(desired) + len(extra) + 1 + personas, on_progress)
        store.put_deployment(spec.name, spec.provider, spec.to_dict(), "deploying")
        try:
            await _converge(store, ctx, provider, run, desired)
            await _remove(store, ctx, provider, run, extra)
            step = run.next()
            run.emit(step, "ready", "start", f"{spec.workers} workers registering")
            try:
                await provider.wait_ready(ctx, provider.ready_timeout(ctx))
            except ProviderError as exc:
                run.emit(step, "ready", "failed", str(exc), exc.log_path)
                raise
            run.emit(step, "ready", "done")
            if personas:
                step = run.next()
                run.emit(step, "personas", "start", spec.personas)
                run.emit(step, "personas", "done", await _sync_personas(spec, provider.endpoint(ctx) or "", ctx))
        except ProviderError as exc:
            store.set_status(spec.name, "failed")
            raise DeployError(str(exc), exc.log_path) from None
        store.set_status(spec.name, "running")
        url = provider.endpoint(ctx) or ""
        urls = tuple(provider.endpoints(ctx))
        return Deployment(spec.name, spec.provider, url, ctx.secrets.owner_api_key, ctx.directory, urls)


async def _sync_personas(spec: DeploySpec, url: str, ctx: Context) -> str:
    """Apply the spec's persona files (checked when the spec was loaded); with ``personas-prune``,
    remove the personas no file defines."""
    files = load_persona_files(spec.personas or "")
    try:
        async with Client(url, ctx.secrets.owner_api_key) as client:
            for persona in files:
                await client.set_persona(persona.id, **persona.body())
            pruned = []
            if spec.personas_prune:
                keep = {f.id for f in files}
                for existing in await client.personas():
                    if existing["personaId"] not in keep:
                        await client.remove_persona(existing["personaId"])
                        pruned.append(existing["personaId"])
    except ClientError as exc:
        raise ProviderError(f"applying the persona files: {exc}") from None
    return f"{len(files)} applied" + (f", {len(pruned)} removed ({', '.join(pruned)})" if pruned else "")


def deploy(spec: DeploySpec, on_progress: OnProgress | None = None, store: StateStore | None = None) -> Deployment:
    """Blocking :func:`deploy_async`, for scripts and the CLI."""
    return asyncio.run(deploy_async(spec, on_progress, store))


def spec_of(store: StateStore, name: str) -> DeploySpec:
    record = store.deployment(name)
    if record is None:
        known = ", ".join(store.deployments() + memberships(store)) or "none"
        raise DeployError(f"no deployment named {name!r} (known: {known})")
    return load_spec(record["spec"])


def connect(name: str = "default", store: StateStore | None = None) -> Deployment:
    """The recorded deployment ``name``, for a :class:`~dac_provision.client.Client`; no I/O beyond the store."""
    store = store or StateStore()
    if store.deployment(name) is None and (joined := membership(store, name)) is not None:
        return Deployment(name, "joined", joined.url, joined.api_key, store.root)
    spec = spec_of(store, name)
    ctx = context_for(store, spec)
    provider = provider_for(spec.provider)
    url = provider.endpoint(ctx)
    if url is None:
        raise DeployError(f"deployment {name!r} has no orchestrator (run deploy)")
    urls = tuple(provider.endpoints(ctx))
    return Deployment(name, spec.provider, url, ctx.secrets.owner_api_key, ctx.directory, urls)


async def destroy_async(name: str, on_progress: OnProgress | None = None, store: StateStore | None = None) -> bool:
    """Remove everything the deployment owns, then forget it. False if there was nothing to destroy."""
    store = store or StateStore()
    if store.deployment(name) is None:
        return False
    spec = spec_of(store, name)
    provider = provider_for(spec.provider)
    scaler = context_for(store, spec).resources.get("autoscaler")
    if scaler is not None:  # a controller stops acting first: it may hold the lock while it scales
        try:
            await provider.delete(context_for(store, spec), scaler)
        except (ProviderError, DeployError) as exc:
            raise DeployError(f"destroy stopped, run it again to finish: {exc}") from None
    with store.lock(name):
        spec = spec_of(store, name)  # as the controller left it
        ctx = context_for(store, spec)
        if scaler is not None:
            try:
                store.unrecord(name, scaler.kind, scaler.name)
                ctx.resources.pop(scaler.name)
                if hasattr(provider, "workers_in_cloud"):  # it may have made workers this store never saw
                    await adopt_workers_async(name, store)
                    ctx = context_for(store, spec)
            except (ProviderError, DeployError) as exc:
                store.set_status(name, "failed")
                raise DeployError(f"destroy stopped, run it again to finish: {exc}") from None
        order = {d.name: i for i, d in enumerate(plan(spec))}
        waves: dict[int, list[Resource]] = {}
        for resource in ctx.resources.values():
            # Workers first (all at once), then the rest in reverse plan order.
            rank = -1 if resource.kind == "worker" else order.get(resource.name, len(order))
            waves.setdefault(rank, []).append(resource)
        run = _Run(len(ctx.resources), on_progress)
        store.set_status(name, "destroying")

        async def one(resource: Resource) -> None:
            step = run.next()
            run.emit(step, resource.name, "start")
            await provider.delete(ctx, resource)
            store.unrecord(name, resource.kind, resource.name)
            run.emit(step, resource.name, "removed")

        for rank in sorted(waves, key=lambda r: (r != -1, -r)):
            try:
                await _every(one(r) for r in waves[rank])
            except Exception as exc:
                store.set_status(name, "failed")
                raise DeployError(f"destroy stopped, run it again to finish: {exc}") from None
        after = getattr(provider, "after_destroy", None)
        if after is not None:
            await after(ctx)
        shutil.rmtree(ctx.directory, ignore_errors=True)
        store.forget(name)
    return True


async def adopt_workers_async(name: str, store: StateStore) -> int:
    """Make the recorded workers those the cloud has (by tag): a controller on another machine may have
    added, put to sleep or removed some. Returns the count of awake ones, recorded as the spec's size.
    A target that cannot list its workers (local, pulumi) is left as recorded."""
    spec = spec_of(store, name)
    provider = provider_for(spec.provider)
    listing = getattr(provider, "workers_in_cloud", None)
    if listing is None:
        return spec.workers
    ctx = context_for(store, spec)
    try:
        found = {r.name: r for r in await listing(ctx)}
    except ProviderError as exc:
        raise DeployError(str(exc), exc.log_path) from None
    for resource in store.resources(name, "worker"):
        if resource.name not in found:
            store.unrecord(name, "worker", resource.name)
    for resource in found.values():
        recorded = ctx.resources.get(resource.name)
        store.record(name, resource if recorded is None else replace(recorded, details=resource.details))
    awake = sum(1 for r in found.values() if not asleep(r))
    if awake != spec.workers:
        state = store.deployment(name) or {}
        resized = load_spec(spec.to_dict(), workers=awake).to_dict()
        store.put_deployment(name, spec.provider, resized, state.get("status", "running"))
    return awake


def destroy(name: str, on_progress: OnProgress | None = None, store: StateStore | None = None) -> bool:
    return asyncio.run(destroy_async(name, on_progress, store))
