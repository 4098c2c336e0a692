"""Workers on DigitalOcean droplets, through pydo (the official client), booted by cloud-init.

Resources (create-or-adopt, query, delete; each idempotent):
- ``do-ssh-key``: the deployment's own ed25519 key (generated once, kept in the state store), so an
  operator can reach a worker (``dac-provision logs --worker``) and nobody else's key is needed.
- ``do-firewall``: applies to the deployment's tag; no inbound traffic except SSH from ``ssh-from``.
- ``worker``: one droplet per worker, named ``dac-<deployment>-worker-<n>`` (its hostname, so its
  worker id), tagged ``dac-deployment:<name>`` and ``dac-role:worker``. The engine asks for workers one
  by one and all at once; creates arriving together are sent as batches of at most ten names (DO's
  limit), each batch with its own registration token good for that many hellos. Before creating, the
  deployment's droplets are listed by tag and adopted, so a deploy cut short resumes without duplicates.

pydo's own retries are off: a 429 is retried after the server's wait, a 5xx only where repeating is
safe (reads and deletes). A failed create is never repeated blindly; the next deploy re-lists first.
The quota every answer reports is spent locally (:class:`~.retry.RateBudget`), so a wave of calls
waits for it to refill rather than collecting 429s.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from pydo.aio import Client

from ..plan import Desired
from ..spec import DeploySpec
from .base import Context, Health, ProviderError, Resource
from .retry import TRANSIENT, RateBudget, RetryPolicy
from .workers_boot import WorkerBoot, ssh_public_key

DEFAULT_URL = "https://api.digitalocean.com"
TOKEN_VARIABLES = ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")
BATCH = 10
PAGE = 200


class DigitalOceanError(ProviderError):
    pass


def do_token() -> str | None:
    return next((os.environ[n] for n in TOKEN_VARIABLES if os.environ.get(n)), None)


def deployment_tag(name: str) -> str:
    return f"dac-deployment:{name}"


def droplet_name(spec: DeploySpec, worker: str) -> str:
    return f"dac-{spec.name}-{worker}"


def _explain(what: str, exc: HttpResponseError) -> str:
    status = exc.status_code or 0
    message = ""
    try:
        body = exc.response.json() if exc.response is not None else {}
        message = str(body.get("message") or "")
    except (ValueError, AttributeError, TypeError):
        message = ""
    if status == 401:
        return "DigitalOcean rejected the API token (check DIGITALOCEAN_TOKEN)"
    return f"DigitalOcean {what} answered {status}: {message or exc.reason or 'no detail'}"[:400]


class DigitalOceanProvider:
    """The DigitalOcean part of the cloud target; the engine reaches it through :class:`~.cloud.CloudProvider`."""

    kinds = ("do-ssh-key", "do-firewall", "worker")

    def __init__(self, boot: WorkerBoot) -> None:
        self.boot = boot
        self.policy = RetryPolicy.from_env()
        self.budget = RateBudget(self.policy.longest_wait)
        self._pending: list[tuple[str, asyncio.Future[Resource]]] = []
        self._flush: asyncio.Task[None] | None = None

    def preflight(self, ctx: Context) -> list[str]:
        return [] if do_token() else ["DigitalOcean: set DIGITALOCEAN_TOKEN (an API token with droplet and tag scopes)"]

    def client(self) -> Client:
        token = do_token()
        if not token:
            raise DigitalOceanError("DigitalOcean: DIGITALOCEAN_TOKEN is not set")
        verify = os.environ.get("SSL_CERT_FILE") or True
        return Client(
            token=token,
            endpoint=os.environ.get("DAC_DO_API_URL") or DEFAULT_URL,
            connection_verify=verify,
            retry_total=0,
            raw_response_hook=lambda response: self.budget.observe(response.http_response.headers),
        )

    async def call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, safe: bool, **kwargs: Any) -> Any:
        """One pydo call under our retry policy; ``None`` for a 404 (pydo returns documented 404s as dicts)."""
        for attempt in range(self.policy.attempts):
            last = attempt + 1 == self.policy.attempts
            try:
                async with self.budget.slot():
                    result = await fn(*args, **kwargs)
            except HttpResponseError as exc:
                status = exc.status_code or 0
                if status == 404:
                    return None
                if (status == 429 or (safe and status in TRANSIENT)) and not last:
                    headers = dict(exc.response.headers) if exc.response is not None else {}
                    wait = self.policy.wait(attempt, headers)
                    if wait <= self.policy.longest_wait:
                        await asyncio.sleep(wait)
                        continue
                raise DigitalOceanError(_explain(what, exc)) from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                if safe and not last:
                    await asyncio.sleep(self.policy.backoff(attempt))
                    continue
                raise DigitalOceanError(f"DigitalOcean {what}: no answer ({type(exc).__name__})") from None
            if isinstance(result, dict) and "id" in result and "message" in result and len(result) <= 3:
                # pydo returns the error bodies its spec documents instead of raising them.
                if result["id"] == "not_found":
                    return None
                raise DigitalOceanError(f"DigitalOcean {what}: {result['id']}: {result['message']}"[:400])
            return result
        raise DigitalOceanError(f"DigitalOcean {what}: gave up after {self.policy.attempts} attempts")

    async def _all(self, what: str, fn: Callable[..., Awaitable[Any]], key: str, **query: Any) -> list[dict[str, Any]]:
        items, page = [], 1
        while True:
            body = await self.call(what, fn, safe=True, per_page=PAGE, page=page, **query) or {}
            items += body.get(key) or []
            if not ((body.get("links") or {}).get("pages") or {}).get("next"):
                return items
            page += 1

    async def droplets(self, client: Client, spec: DeploySpec) -> list[dict[str, Any]]:
        return await self._all("list droplets", client.droplets.list, "droplets", tag_name=deployment_tag(spec.name))

    # --- create ---------------------------------------------------------------------------------

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        if desired.kind == "worker":
            return await self._enqueue(ctx, desired.name)
        async with self.client() as client:
            if desired.kind == "do-ssh-key":
                return await self._ssh_key(ctx, client)
            return await self._firewall(ctx, client)

    async def _ssh_key(self, ctx: Context, client: Client) -> Resource:
        public = ssh_public_key(ctx)
        for key in await self._all("list SSH keys", client.ssh_keys.list, "ssh_keys"):
            if key["public_key"].split()[:2] == public.split()[:2]:
                return Resource("do-ssh-key", "do-ssh-key", str(key["id"]), False, {"fingerprint": key["fingerprint"]})
        body = {"name": f"dac-{ctx.spec.name}", "public_key": public}
        key = (await self.call("create SSH key", client.ssh_keys.create, body, safe=False))["ssh_key"]
        return Resource("do-ssh-key", "do-ssh-key", str(key["id"]), True, {"fingerprint": key["fingerprint"]})

    def _firewall_body(self, spec: DeploySpec) -> dict[str, Any]:
        everywhere = {"addresses": ["0.0.0.0/0", "::/0"]}
        inbound = [{"protocol": "tcp", "ports": "22", "sources": {"addresses": list(spec.digitalocean.ssh_from)}}]
        return {
            "name": f"dac-{spec.name}-workers",
            "tags": [deployment_tag(spec.name)],
            "inbound_rules": inbound if spec.digitalocean.ssh_from else [],
            # Outbound only ("0" is every port): workers dial the orchestrator, Kafka is not theirs to reach.
            "outbound_rules": [
                {"protocol": protocol, "ports": "0", "destinations": everywhere} for protocol in ("tcp", "udp", "icmp")
            ],
        }

    async def _firewall(self, ctx: Context, client: Client) -> Resource:
        body = self._firewall_body(ctx.spec)
        for firewall in await self._all("list firewalls", client.firewalls.list, "firewalls"):
            if firewall["name"] == body["name"]:
                return Resource("do-firewall", "do-firewall", firewall["id"], False)
        firewall = (await self.call("create firewall", client.firewalls.create, body, safe=False))["firewall"]
        return Resource("do-firewall", "do-firewall", firewall["id"], True)

    async def _enqueue(self, ctx: Context, worker: str) -> Resource:
        """Wait for this worker's droplet; creates that arrive together leave as one batched request."""
        future: asyncio.Future[Resource] = asyncio.get_running_loop().create_future()
        self._pending.append((worker, future))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._create_batches(ctx))
        return await future

    async def _create_batches(self, ctx: Context) -> None:
        await asyncio.sleep(0.05)  # let the rest of the engine's wave arrive
        pending, self._pending = self._pending, []
        try:
            async with self.client() as client:
                existing = {d["name"]: d for d in await self.droplets(client, ctx.spec)}
                todo = []
                for worker, future in pending:
                    droplet = existing.get(droplet_name(ctx.spec, worker))
                    if droplet is not None:
                        if droplet["status"] == "off":  # powered off, not lost: power it on, keep it
                            await self.call(
                                "power on droplet",
                                client.droplet_actions.post,
                                droplet["id"],
                                {"type": "power_on"},
                                safe=False,
                            )
                        future.set_result(self._resource(worker, droplet, created=False))
                    else:
                        todo.append((worker, future))
                batches = [todo[i : i + BATCH] for i in range(0, len(todo), BATCH)]
                await asyncio.gather(*(self._create_batch(ctx, client, batch) for batch in batches))
        except Exception as exc:  # the futures carry it to each worker's step
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, ProviderError) else DigitalOceanError(str(exc)))

    async def _create_batch(self, ctx: Context, client: Client, batch: list[tuple[str, Any]]) -> None:
        spec, names = ctx.spec, [droplet_name(ctx.spec, worker) for worker, _ in batch]
        try:
            user_data = await self.boot.user_data(ctx, uses=len(batch))
            body = {
                "names": names,
                "region": spec.digitalocean.region,
                "size": spec.digitalocean.size,
                "image": spec.digitalocean.image,
                "ssh_keys": [int(ctx.resources["do-ssh-key"].id)],
                "tags": [deployment_tag(spec.name), "dac-role:worker"],
                "user_data": user_data,
                "monitoring": True,
            }
            created = await self.call("create droplets", client.droplets.create, body, safe=False)
        except ProviderError as exc:
            for _, future in batch:
                future.set_exception(DigitalOceanError(f"{exc} (creating {', '.join(names)})"))
            return
        by_name = {d["name"]: d for d in created["droplets"]}
        for worker, future in batch:
            future.set_result(self._resource(worker, by_name[droplet_name(spec, worker)], created=True))

    def _resource(self, worker: str, droplet: dict[str, Any], created: bool) -> Resource:
        return Resource("worker", worker, str(droplet["id"]), created, {"droplet": droplet["name"]})

    # --- query / delete -------------------------------------------------------------------------

    async def query(self, ctx: Context, resource: Resource) -> Health:
        async with self.client() as client:
            if resource.kind == "worker":
                body = await self.call("get droplet", client.droplets.get, int(resource.id), safe=True)
                status = (body or {}).get("droplet", {}).get("status", "gone")
                detail = "" if status == "active" else f"droplet is {status}"
                return Health(status in {"new", "active"}, detail, update=status == "off")
            if resource.kind == "do-ssh-key":
                found = await self.call("get SSH key", client.ssh_keys.get, int(resource.id), safe=True)
            else:
                found = await self.call("get firewall", client.firewalls.get, resource.id, safe=True)
        return Health(found is not None, "" if found else f"{resource.kind} {resource.id} is gone")

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        async with self.client() as client:
            if resource.kind == "worker":
                if drain:
                    await self._shut_down(ctx, client, int(resource.id))
                await self.call("delete droplet", client.droplets.destroy, int(resource.id), safe=True)
            elif resource.kind == "do-ssh-key":
                await self.call("delete SSH key", client.ssh_keys.delete, int(resource.id), safe=True)
            else:
                await self.call("delete firewall", client.firewalls.delete, resource.id, safe=True)

    async def _shut_down(self, ctx: Context, client: Client, droplet_id: int) -> None:
        """An ACPI shutdown: systemd stops the worker with SIGTERM, which finishes the running execution."""
        body = {"type": "shutdown"}
        if await self.call("shut down droplet", client.droplet_actions.post, droplet_id, body, safe=False) is None:
            return
        deadline = asyncio.get_running_loop().time() + ctx.spec.limits.timeout_ms / 1000 + 60
        while asyncio.get_running_loop().time() < deadline:
            found = await self.call("get droplet", client.droplets.get, droplet_id, safe=True)
            if found is None or found["droplet"]["status"] == "off":
                return
            await asyncio.sleep(1)

    async def sleep(self, ctx: Context, resource: Resource) -> None:
        """Drain a worker's droplet and leave it powered off (an ACPI shutdown, forced if it lingers):
        it keeps its disk, so waking it is a power-on, not a fresh boot."""
        async with self.client() as client:
            await self._shut_down(ctx, client, int(resource.id))
            found = await self.call("get droplet", client.droplets.get, int(resource.id), safe=True)
            if found is not None and found["droplet"]["status"] != "off":
                body = {"type": "power_off"}
                await self.call("power off droplet", client.droplet_actions.post, int(resource.id), body, safe=False)

    async def power(self, droplet_id: int, on: bool) -> None:
        """Power a worker's droplet off (it keeps its disk, tags and address) or on again."""
        async with self.client() as client:
            body = {"type": "power_on" if on else "power_off"}
            await self.call(f"{body['type']} droplet", client.droplet_actions.post, droplet_id, body, safe=False)

    async def address(self, droplet_id: int) -> str:
        """The droplet's public IPv4 address (by type, never by position in the list)."""
        async with self.client() as client:
            body = await self.call("get droplet", client.droplets.get, droplet_id, safe=True)
        if body is None:
            raise DigitalOceanError(f"droplet {droplet_id} is gone")
        for network in body["droplet"]["networks"].get("v4") or []:
            if network.get("type") == "public":
                return network["ip_address"]
        raise DigitalOceanError(f"droplet {droplet_id} has no public address yet ({body['droplet']['status']})")

    async def active(self, spec: DeploySpec) -> dict[str, str]:
        """Each of the deployment's droplets by name, with its status."""
        async with self.client() as client:
            return {d["name"]: d["status"] for d in await self.droplets(client, spec)}

    async def sweep(self, spec: DeploySpec) -> list[str]:
        """Delete by tag and name whatever the deployment left, with or without a state file."""
        gone = []
        async with self.client() as client:
            droplets = await self.droplets(client, spec)
            if droplets:
                await self.call(
                    "delete droplets", client.droplets.destroy_by_tag, safe=True, tag_name=deployment_tag(spec.name)
                )
                gone.append(f"{len(droplets)} droplets tagged {deployment_tag(spec.name)}")
            name = self._firewall_body(spec)["name"]
            for firewall in await self._all("list firewalls", client.firewalls.list, "firewalls"):
                if firewall["name"] == name:
                    await self.call("delete firewall", client.firewalls.delete, firewall["id"], safe=True)
                    gone.append(f"firewall {name}")
            for key in await self._all("list SSH keys", client.ssh_keys.list, "ssh_keys"):
                if key["name"] == f"dac-{spec.name}":
                    await self.call("delete SSH key", client.ssh_keys.delete, key["id"], safe=True)
                    gone.append(f"SSH key dac-{spec.name}")
        return gone
