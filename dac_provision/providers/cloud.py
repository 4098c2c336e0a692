"""The cloud target: Kafka topics on the user's cluster, the orchestrator on Fly Machines, workers on
DigitalOcean. One provider to the engine, made of three that each own their kinds of resource.

Ready means every planned worker has said hello through Fly's public endpoint; a worker that never
does fails the deploy with its droplet's name and state. ``sweep`` finds by tag, name and topic prefix
whatever the deployment left in any of the three, with or without a state file.
"""

from __future__ import annotations

import asyncio

from ..plan import Desired, worker_names
from ..spec import DeploySpec
from . import kafka, ssh
from .base import Context, Health, Resource
from .digitalocean import DigitalOceanProvider, droplet_name
from .fly import FlyProvider
from .fly_api import tls_context
from .fly_scaler import FlyScaler
from .readiness import require_registered
from .ssh import Target
from .workers_boot import WorkerBoot, ssh_key_path


class CloudProvider:
    def __init__(self) -> None:
        self.fly = FlyProvider()
        self.digitalocean = DigitalOceanProvider(WorkerBoot(self.fly.endpoint, self.fly.bundle))
        self.scaler = FlyScaler(self.fly.bundle)
        self._by_kind = {kind: part for part in (self.fly, self.digitalocean, self.scaler) for kind in part.kinds}

    def preflight(self, ctx: Context) -> list[str]:
        return self.fly.preflight(ctx) + self.digitalocean.preflight(ctx)

    def endpoint(self, ctx: Context) -> str | None:
        return self.fly.endpoint(ctx)

    def endpoints(self, ctx: Context) -> list[str]:
        url = self.endpoint(ctx)  # Fly's proxy: one address in front of every orchestrator machine
        return [url] if url else []

    def ready_timeout(self, ctx: Context) -> float:
        return float(ctx.spec.digitalocean.ready_timeout_s)

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        if desired.kind == "kafka-topics":
            return await kafka.create_resource(ctx.spec.kafka, None, ctx.resources.get("topics"), shared=True)
        return await self._by_kind[desired.kind].create(ctx, desired)

    async def query(self, ctx: Context, resource: Resource) -> Health:
        if resource.kind == "kafka-topics":
            return Health(*await kafka.query_resource(ctx.spec.kafka, None, resource))
        return await self._by_kind[resource.kind].query(ctx, resource)

    async def sleep(self, ctx: Context, resource: Resource) -> None:
        """Workers only: their droplet drained and powered off, kept for a later power-on."""
        await self._by_kind[resource.kind].sleep(ctx, resource)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        if resource.kind == "kafka-topics":
            if resource.details.get("created"):  # a shared cluster: only what this deployment created
                await kafka.delete_topics(ctx.spec.kafka, only=resource.details["created"])
            return
        await self._by_kind[resource.kind].delete(ctx, resource, drain=drain)

    async def workers_in_cloud(self, ctx: Context) -> list[Resource]:
        """The deployment's worker droplets as the cloud has them (by tag), powered off ones marked
        asleep: what a controller on another machine, or a destroy after one, must know about."""
        prefix = droplet_name(ctx.spec, "")
        async with self.digitalocean.client() as client:
            droplets = await self.digitalocean.droplets(client, ctx.spec)
        found = []
        for droplet in droplets:
            if "dac-role:worker" not in droplet.get("tags", []) or not droplet["name"].startswith(prefix):
                continue
            worker = droplet["name"].removeprefix(prefix)
            details = {"droplet": droplet["name"]} | ({"asleep": True} if droplet["status"] == "off" else {})
            found.append(Resource("worker", worker, str(droplet["id"]), False, details))
        return found

    async def wait_ready(self, ctx: Context, seconds: float) -> None:
        expected = {droplet_name(ctx.spec, name) for name in worker_names(ctx.spec)}
        url = self.endpoint(ctx)
        if not expected or url is None:
            return

        async def why(missing: list[str]) -> tuple[str, None]:
            statuses = await self.digitalocean.active(ctx.spec)
            states = "; ".join(f"{m}: droplet {statuses.get(m, 'missing')}, no hello" for m in missing[:5])
            return f" [{states}]; see dac-provision logs --worker NAME --boot", None

        await require_registered(url, ctx.secrets.owner_api_key, expected, seconds, why, tls_context(), poll=0.25)

    async def worker_log(self, ctx: Context, resource: Resource, lines: int, boot: bool = False) -> str:
        """The worker's journal, or with ``boot`` how cloud-init went, read over SSH with the deployment's key."""
        host = await self.digitalocean.address(int(resource.id))
        target = Target.for_droplet(host, ssh_key_path(ctx), ctx.directory / "ssh" / "known_hosts")
        return await asyncio.to_thread(ssh.boot_log if boot else ssh.journal, target, lines)

    async def sweep(self, spec: DeploySpec) -> list[str]:
        gone = await self.digitalocean.sweep(spec)
        gone += await self.fly.sweep(spec)
        if spec.kafka.topic_prefix:  # never the unprefixed names another deployment may share
            gone += [f"topic {t}" for t in await kafka.delete_topics(spec.kafka)]
        return gone
