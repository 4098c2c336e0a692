"""spec -> the resources a deployment should have. Pure: no I/O, so every target's shape is unit-tested.

The engine compares this list with what the state store recorded: what is missing or dead is created,
what is healthy is left alone, what is recorded but no longer wanted (a smaller worker count) is
removed. ``after`` orders the work; ``follows`` says which upstream replacements force a replacement
here too (a new in-memory broker has no topics and no consumer group, so both must be redone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .spec import DeploySpec


@dataclass(frozen=True)
class Desired:
    kind: str
    name: str
    after: tuple[str, ...] = ()
    follows: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False)


class PlanError(ValueError):
    pass


def orchestrator_names(spec: DeploySpec) -> list[str]:
    """``orchestrator`` (the one clients are pointed at), then ``orchestrator-2`` ... for replicas."""
    return ["orchestrator"] + [f"orchestrator-{i}" for i in range(2, spec.orchestrator.replicas + 1)]


def worker_names(spec: DeploySpec) -> list[str]:
    return [f"worker-{i}" for i in range(1, spec.workers + 1)]


def _local(spec: DeploySpec) -> list[Desired]:
    desired: list[Desired] = []
    upstream: tuple[str, ...] = ()
    if spec.kafka.bootstrap is None:
        desired.append(Desired("broker", "broker"))
        upstream = ("broker",)
    desired.append(Desired("kafka-topics", "topics", after=upstream, follows=upstream))
    store: tuple[str, ...] = ()
    if spec.store.backend == "postgres" and spec.store.url_env is None:  # the deployment's own server
        desired.append(Desired("postgres", "postgres"))
        store = ("postgres",)
    orchestrators = tuple(orchestrator_names(spec))
    desired += [Desired("orchestrator", name, after=("topics", *store), follows=upstream) for name in orchestrators]
    desired += [
        Desired("worker", name, after=orchestrators, details={"index": i})
        for i, name in enumerate(worker_names(spec), 1)
    ]
    if spec.scaling.with_deployment:  # the scaling controller, as one of the deployment's processes
        desired.append(Desired("autoscaler", "autoscaler", after=("orchestrator",)))
    return desired


def _cloud(spec: DeploySpec) -> list[Desired]:
    """Topics, the Fly app and the DigitalOcean key and firewall at once; then the volume; then the
    orchestrators (they need topics, and the volume unless the store is PostgreSQL); then every worker
    (it needs the orchestrators' URL)."""
    desired = [
        Desired("kafka-topics", "topics"),
        Desired("fly-app", "fly-app"),
        Desired("do-ssh-key", "do-ssh-key"),
        Desired("do-firewall", "do-firewall"),
    ]
    state: tuple[str, ...] = ("fly-app",)
    if spec.store.backend == "sqlite":  # its file on a volume; a shared store needs none
        desired.append(Desired("fly-volume", "fly-volume", after=("fly-app",)))
        state = ("fly-volume",)
    desired += [Desired("orchestrator", name, after=("topics", *state)) for name in orchestrator_names(spec)]
    desired += [
        Desired("worker", name, after=("orchestrator", "do-ssh-key", "do-firewall"), details={"index": i})
        for i, name in enumerate(worker_names(spec), 1)
    ]
    if spec.scaling.with_deployment:  # the scaling controller, on a Fly machine of its own app
        desired.append(Desired("autoscaler", "autoscaler", after=("orchestrator", "do-ssh-key", "do-firewall")))
    return desired


def _pulumi(spec: DeploySpec) -> list[Desired]:
    """One stack: Pulumi orders what is inside it (stacks/dac-cloud makes what ``_cloud`` lists)."""
    return [Desired("pulumi-stack", "stack")]


PLANNERS = {"local": _local, "cloud": _cloud, "pulumi": _pulumi}


def plan(spec: DeploySpec) -> list[Desired]:
    """The desired resources in an order that satisfies every ``after``."""
    try:
        planner = PLANNERS[spec.provider]
    except KeyError:
        raise PlanError(f"provider {spec.provider!r} is not available yet (available: {', '.join(PLANNERS)})") from None
    return planner(spec)


def levels(desired: list[Desired]) -> list[list[Desired]]:
    """Group into waves: everything in a wave depends only on earlier waves, so a wave runs concurrently."""
    placed: dict[str, int] = {}
    waves: list[list[Desired]] = []
    names = {d.name for d in desired}
    for item in desired:
        missing = [a for a in item.after if a not in names]
        if missing:
            raise PlanError(f"{item.name}: depends on {', '.join(missing)}, which the plan does not have")
        unplaced = [a for a in item.after if a not in placed]
        if unplaced:
            raise PlanError(f"{item.name}: listed before {', '.join(unplaced)}, which it depends on")
        wave = max((placed[a] + 1 for a in item.after), default=0)
        placed[item.name] = wave
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append(item)
    return waves
