"""The orchestrator on Fly as a Pulumi dynamic resource (there is no maintained Fly provider for Pulumi).

Its create, update and delete run the library's own Fly code (:mod:`dac_provision.providers.fly`), so
``pulumi up`` builds exactly what ``dac-provision deploy`` builds. The provider object holds nothing
secret: the Fly token is read from ``FLY_API_TOKEN`` inside each method, never pickled into state; the
master and owner keys arrive as secret inputs and the minted worker token leaves as a secret output.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

from .client import Client
from .plan import Desired, plan
from .providers.base import Context, Resource
from .providers.fly import FlyProvider
from .providers.workers_boot import TOKEN_MARGIN_S
from .runtime_env import Secrets
from .spec import load_spec

OUTPUTS = ("app", "url", "machine_id", "machine_ids", "volume_id", "bundle_file", "bundle_sha256", "worker_token")
SECRET_OUTPUTS = ["master_key", "owner_api_key", "kafka_password", "store_url", "worker_token"]


def _context(props: dict[str, Any], directory: Path) -> Context:
    secrets = Secrets(master_key=props["master_key"], owner_api_key=props["owner_api_key"], worker_token="")
    return Context(
        load_spec(props["spec"]),
        secrets,
        directory,
        kafka_password=props.get("kafka_password") or None,
        store_url=props.get("store_url") or None,
    )


def _parts(ctx: Context) -> list[Desired]:
    """The app, its volume (a SQLite store only), then each orchestrator machine: created in this
    order (one at a time: an update rolls them), deleted in reverse."""
    return [d for d in plan(ctx.spec) if d.kind in FlyProvider.kinds]


def _recorded(outs: dict[str, Any]) -> dict[str, Resource]:
    app = outs["app"]
    recorded = {"fly-app": Resource("fly-app", "fly-app", app, False)}
    if outs.get("volume_id"):
        recorded["fly-volume"] = Resource("fly-volume", "fly-volume", outs["volume_id"], False, {"app": app})
    machines = outs.get("machine_ids") or {"orchestrator": outs["machine_id"]}  # state from before replicas
    for name, machine_id in machines.items():
        recorded[name] = Resource("orchestrator", name, machine_id, False, {"app": app, "url": outs["url"]})
    return recorded


async def _apply(props: dict[str, Any], recorded: dict[str, Resource] | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        ctx = _context(props, Path(directory))
        ctx.resources.update(recorded or {})
        provider = FlyProvider()
        for part in _parts(ctx):
            ctx.resources[part.name] = await provider.create(ctx, part)
        url = provider.endpoint(ctx) or ""
        async with Client(url, ctx.secrets.owner_api_key) as client:
            uses = max(1, int(props.get("workers", 1)))
            token = await client.create_worker_token(uses, ctx.spec.digitalocean.ready_timeout_s + TOKEN_MARGIN_S)
        bundle = provider.bundle(ctx)
    machines = {r.name: r.id for r in ctx.resources.values() if r.kind == "orchestrator"}
    volume = ctx.resources.get("fly-volume")
    return dict(
        props,
        app=ctx.resources["fly-app"].id,
        volume_id=volume.id if volume is not None else "",
        machine_id=machines["orchestrator"],
        machine_ids=machines,
        url=url,
        bundle_file=bundle.filename,
        bundle_sha256=bundle.sha256,
        worker_token=token,
    )


class FlyOrchestratorProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = asyncio.run(_apply(props, None))
        return pulumi.dynamic.CreateResult(id_=f"{outs['app']}/{outs['machine_id']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        keys = ("spec", "master_key", "owner_api_key", "kafka_password", "store_url", "workers")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        old_app, new_app = (olds.get("spec") or {}).get("fly", {}).get("app"), news["spec"]["fly"].get("app")
        replaces = ["spec"] if new_app and new_app != old_app and olds.get("app") != new_app else []
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        # The same create-or-adopt path: a changed config is an in-place machine update; the volume stays.
        return pulumi.dynamic.UpdateResult(outs=asyncio.run(_apply(news, _recorded(olds))))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        async def run() -> None:
            with tempfile.TemporaryDirectory() as directory:
                ctx = _context(props, Path(directory))
                provider = FlyProvider()
                recorded = _recorded(props)
                for part in reversed([*recorded.values()]):  # machines, the volume, then the app
                    await provider.delete(ctx, part)

        asyncio.run(run())


class FlyOrchestrator(pulumi.dynamic.Resource):
    """Outputs: ``app``, ``url``, ``machine_id``, ``volume_id``, ``bundle_file``, ``bundle_sha256`` and the
    secret ``worker_token`` (a registration token good for ``workers`` first hellos)."""

    app: pulumi.Output[str]
    url: pulumi.Output[str]
    worker_token: pulumi.Output[str]
    bundle_file: pulumi.Output[str]
    bundle_sha256: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        outputs = dict.fromkeys(OUTPUTS)
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(FlyOrchestratorProvider(), name, {**outputs, **props}, opts)
