"""What a deployment looks like right now: every recorded resource checked live, plus the
orchestrator's own view of its workers and executions.

The state store says what should exist; only a live check says what does. ``status`` never trusts the
recorded status alone, so after a crash it reports ``degraded`` (and which part died) rather than the
``running`` that the last deploy wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from .engine import DeployError, adopt_workers_async, asleep, context_for, provider_for, spec_of
from .plan import plan
from .state import StateStore


@dataclass
class ResourceStatus:
    kind: str
    name: str
    id: str
    ok: bool
    detail: str = ""


@dataclass
class DeploymentStatus:
    name: str
    provider: str
    #: Checked live: running (everything healthy), degraded (something is not), down (nothing is).
    state: str
    #: What the last deploy or destroy wrote: running, deploying, failed, destroying.
    last_operation: str
    url: str | None
    resources: list[ResourceStatus]
    workers: list[dict[str, Any]] = field(default_factory=list)
    executions: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Records the orchestrator could not produce to Kafka: held (to be sent) and dropped, by topic.
    outbox: dict[str, Any] = field(default_factory=dict)
    #: What needs the operator soon without anything being wrong yet (the Claude token's expiry).
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _View:
    workers: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def _orchestrator_view(url: str, api_key: str) -> _View:
    headers = {"Authorization": f"Bearer {api_key}"}
    view = _View()
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5) as client:
            view.workers = (await client.get("/api/workers")).raise_for_status().json()["workers"]
            view.counts = (await client.get("/api/executions", params={"limit": 1})).raise_for_status().json()["counts"]
            health = (await client.get("/healthz")).json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        view.problems.append(f"orchestrator API: {type(exc).__name__}")
        return view
    view.problems += [f"orchestrator {part}: {why}" for part, why in health.get("down", {}).items()]
    view.outbox = health.get("outbox", {})
    view.warnings = list(health.get("warnings", []))
    if view.outbox.get("held"):
        view.problems.append(f"kafka: {view.outbox['held']} record(s) held by the orchestrator, sent when it can")
    dropped = view.outbox.get("dropped") or {}
    if dropped:
        lost = ", ".join(f"{topic} {count}" for topic, count in sorted(dropped.items()))
        view.problems.append(f"kafka: records dropped because the outbox was full: {lost}")
    return view


async def status_async(name: str = "default", store: StateStore | None = None) -> DeploymentStatus:
    store = store or StateStore()
    spec = spec_of(store, name)
    record = store.deployment(name) or {}
    provider = provider_for(spec.provider)
    if store.resources(name, "autoscaler") and hasattr(provider, "workers_in_cloud"):
        # A controller on its own machine changes the pool; the cloud, not this store, says what it is.
        with contextlib.suppress(DeployError):
            await adopt_workers_async(name, store)
            spec = spec_of(store, name)
    ctx = context_for(store, spec)
    order = {d.name: i for i, d in enumerate(plan(spec))}
    resources = sorted(ctx.resources.values(), key=lambda r: (order.get(r.name, len(order)), r.name))
    healths = await asyncio.gather(*(provider.query(ctx, r) for r in resources))
    rows = [
        ResourceStatus(r.kind, r.name, r.id, True, "asleep (powered off by the autoscaler)")
        if asleep(r)
        else ResourceStatus(r.kind, r.name, r.id, h.ok, h.detail)
        for r, h in zip(resources, healths, strict=True)
    ]
    problems = [f"{r.name}: {r.detail}" for r in rows if not r.ok]
    url = provider.endpoint(ctx)
    view = _View()
    orchestrator_ok = any(r.kind == "orchestrator" and r.ok for r in rows)
    if url and orchestrator_ok:
        view = await _orchestrator_view(url, ctx.secrets.owner_api_key)
        problems += view.problems
    if rows and all(r.ok for r in rows) and not problems:
        state = "running"
    elif any(r.ok for r in rows):
        state = "degraded"
    else:
        state = "down"
    last = str(record.get("status", ""))
    return DeploymentStatus(
        name, spec.provider, state, last, url, rows, view.workers, view.counts, problems, view.outbox, view.warnings
    )


def status(name: str = "default", store: StateStore | None = None) -> DeploymentStatus:
    return asyncio.run(status_async(name, store))
