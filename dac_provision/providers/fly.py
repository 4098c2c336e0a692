"""The orchestrator on Fly Machines: an app with public IPs, a volume for its SQLite state, its secrets
in Fly's secret store, and one machine whose config says everything else (or, on a PostgreSQL store,
``orchestrator.replicas`` machines across ``fly.regions``, no volume, the database URL a Fly secret).

Resources (create-or-adopt, query, delete; each idempotent):
- ``fly-app``: the app (names are global on Fly: ``fly.app``, else ``dac-<name>-<random>``, recorded
  the moment it exists) with a shared IPv4 and an IPv6, so the services are reachable.
- ``fly-volume``: ``dac_state``, mounted at ``/data``; the orchestrator's database lives there and
  survives machine restarts and updates.
- ``orchestrator``: the machine. Secrets (master key, owner key, Kafka password) go to Fly's secret
  store, never into the config; it gets no reusable worker token, so only workers holding a minted,
  limited-use registration token get in. The runtime wheel and ``boot.py`` ride in the
  machine's ``files``, so a stock Python image is enough; ``fly.image`` names a prebuilt one instead.
  A changed config (new wheel, image, size, limits) is applied as an in-place update guarded by the
  machine's current version; the volume stays.
Every machine carries ``metadata.dac_deployment`` so ``destroy --sweep`` finds what a lost state forgot.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from ..bundle import Bundle, runtime_wheel
from ..plan import Desired
from ..render import TEMPLATES
from ..runtime_env import DATA_DIR, KAFKA_CA_PATH, container_orchestrator_env, kafka_password, orchestrator_secrets
from ..spec import DeploySpec
from .base import Context, Health, ProviderError, Resource
from .fly_api import FlyAPI, FlyError, fly_token, tls_context

PORT = 8080
VOLUME_NAME = "dac_state"
BUNDLE_DIR = "/opt/dac/bundle"
STOCK_IMAGE = "python:3.12-slim"
START_TIMEOUT = 180.0
#: How long Fly gives the orchestrator to drain on stop before it kills it.
STOP_TIMEOUT = "60s"


def app_name(ctx: Context) -> str:
    recorded = ctx.resources.get("fly-app")
    if recorded is not None:
        return recorded.id
    return ctx.spec.fly.app or f"dac-{ctx.spec.name}-{secrets.token_hex(3)}"


def public_url(spec: DeploySpec, app: str) -> str:
    return (spec.fly.url or f"https://{app}.fly.dev").rstrip("/")


def guest_size(spec: DeploySpec) -> dict[str, Any]:
    match = re.fullmatch(r"(shared|performance)-cpu-(\d+)x", spec.fly.vm_size)
    kind, cpus = (match.group(1), int(match.group(2))) if match else ("shared", 1)
    return {"cpu_kind": kind, "cpus": cpus, "memory_mb": spec.fly.memory_mb}


@cache
def boot_script() -> bytes:
    return (TEMPLATES / "fly" / "boot.py").read_bytes()


def file_entry(guest_path: str, data: bytes) -> dict[str, Any]:
    return {"guest_path": guest_path, "raw_value": base64.b64encode(data).decode()}


def machine_config(
    spec: DeploySpec, bundle: Bundle, volume_id: str | None, name: str = "orchestrator"
) -> dict[str, Any]:
    """The orchestrator machine's full config (Fly updates replace it whole). Pure: no secret inside.
    ``volume_id`` None: the store is PostgreSQL (its URL is a Fly secret), and ``name`` is this replica's."""
    wheel = f"{BUNDLE_DIR}/{bundle.filename}"
    env = container_orchestrator_env(spec, PORT)
    if volume_id is None:
        env.pop("DAC_DB_PATH", None)
        env["DAC_ORCHESTRATOR_NAME"] = name
    env |= {"DAC_BUNDLE_DIR": BUNDLE_DIR, "DAC_BUNDLE_WHEEL": wheel, "DAC_BUNDLE_SHA256": bundle.sha256}
    files = [file_entry(wheel, bundle.path.read_bytes()), file_entry("/opt/dac/boot.py", boot_script())]
    if spec.kafka.ca_file:
        files.append(file_entry(KAFKA_CA_PATH, Path(spec.kafka.ca_file).expanduser().read_bytes()))
    check = {"type": "http", "port": PORT, "method": "GET", "path": "/healthz", "interval": "15s", "timeout": "5s"}
    config: dict[str, Any] = {
        "image": spec.fly.image or STOCK_IMAGE,
        "env": env,
        "guest": guest_size(spec),
        "files": files,
        "mounts": [{"volume": volume_id, "path": DATA_DIR}] if volume_id else [],
        "services": [
            {
                "protocol": "tcp",
                "internal_port": PORT,
                "ports": [
                    {"port": 443, "handlers": ["tls", "http"]},
                    {"port": 80, "handlers": ["http"], "force_https": True},
                ],
                # Fly's proxy sees only inbound traffic; workers hold outbound sockets, so never auto-stop.
                "autostop": "off",
                "autostart": True,
                "min_machines_running": 1,
                "checks": [check],
            }
        ],
        "checks": {"healthz": check | {"grace_period": "30s"}},
        "restart": {"policy": "always"},
        "stop_config": {"signal": "SIGTERM", "timeout": STOP_TIMEOUT},
        "metadata": {"dac_deployment": spec.name, "dac_role": "orchestrator", "dac_orchestrator": name},
    }
    if not spec.fly.image:
        config["init"] = {"cmd": ["python3", "/opt/dac/boot.py", "orchestrator"]}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    config["metadata"]["dac_config"] = digest
    return config


class FlyProvider:
    """The Fly part of the cloud target; the engine reaches it through :class:`~.cloud.CloudProvider`."""

    kinds = ("fly-app", "fly-volume", "orchestrator")

    def __init__(self) -> None:
        self._bundle: Bundle | None = None

    def preflight(self, ctx: Context) -> list[str]:
        problems = [] if fly_token() else ["Fly: set FLY_API_TOKEN (from `fly tokens create org`)"]
        if ctx.spec.kafka.ca_file and not Path(ctx.spec.kafka.ca_file).expanduser().is_file():
            problems.append(f"kafka.ca-file {ctx.spec.kafka.ca_file} is not readable")
        store = ctx.spec.store
        if store.backend == "postgres" and not (ctx.store_url or (store.url_env and os.environ.get(store.url_env))):
            problems.append(
                f"store: the orchestrators share a PostgreSQL database: set {store.url_env or 'store.url-env'}"
                " to its URL (postgresql://USER:PASSWORD@HOST:PORT/DB)"
            )
        return problems

    def api(self) -> FlyAPI:
        token = fly_token()
        if not token:
            raise ProviderError("Fly: FLY_API_TOKEN is not set")
        return FlyAPI(token)

    def bundle(self, ctx: Context) -> Bundle:
        if self._bundle is None:
            self._bundle = runtime_wheel(ctx.directory / "bundle")
        return self._bundle

    def endpoint(self, ctx: Context) -> str | None:
        recorded = ctx.resources.get("fly-app")
        return public_url(ctx.spec, recorded.id) if recorded else None

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        async with self.api() as api:
            if desired.kind == "fly-app":
                return await self._app(ctx, api)
            if desired.kind == "fly-volume":
                return await self._volume(ctx, api)
            return await self._orchestrator(ctx, api, desired.name)

    async def _app(self, ctx: Context, api: FlyAPI) -> Resource:
        app = app_name(ctx)
        created = await api.get_app(app) is None
        if created:
            await api.create_app(app, ctx.spec.fly.org)
        kinds = {("v6" if ":" in ip["ip"] else "v4") for ip in await api.ips(app)}
        for kind, wanted in (("v4", "shared_v4"), ("v6", "v6")):
            if kind not in kinds:
                await api.assign_ip(app, wanted)
        return Resource("fly-app", "fly-app", app, created, {"org": ctx.spec.fly.org, "url": public_url(ctx.spec, app)})

    async def _volume(self, ctx: Context, api: FlyAPI) -> Resource:
        app = ctx.resources["fly-app"].id
        for volume in await api.volumes(app):
            if volume.get("name") == VOLUME_NAME and volume.get("state") not in {"destroyed", "pending_destroy"}:
                return Resource("fly-volume", "fly-volume", volume["id"], False, {"app": app})
        body = {"name": VOLUME_NAME, "region": ctx.spec.fly.region, "size_gb": ctx.spec.fly.volume_gb}
        volume = await api.create_volume(app, body | {"encrypted": True})
        return Resource("fly-volume", "fly-volume", volume["id"], True, {"app": app})

    async def _orchestrator(self, ctx: Context, api: FlyAPI, name: str = "orchestrator") -> Resource:
        app, spec = ctx.resources["fly-app"].id, ctx.spec
        config = machine_config(spec, self.bundle(ctx), _volume_id(ctx), name)
        password = ctx.kafka_password or kafka_password(spec)
        values = orchestrator_secrets(ctx.secrets, password, reusable_worker_token=False)
        values |= store_secret(spec, ctx.store_url)
        version = await api.set_secrets(app, values)
        existing = [
            m
            for m in await api.machines(app, dac_role="orchestrator")
            if m.get("state") != "destroyed" and _replica(m) == name
        ]
        body = {"config": config, "region": region_of(spec, name), "min_secrets_version": version}
        current = existing[0] if existing else None
        if current is None:
            machine, created = await api.create_machine(app, body | {"name": name}), True
        elif _config_digest(current) != config["metadata"]["dac_config"]:
            # A rolling update: Fly replaces the config whole; current_version refuses a concurrent change.
            update = body | {"current_version": current["version"]}
            machine, created = await api.update_machine(app, current["id"], update), True
        else:
            machine, created = current, False
        await api.wait_machine(app, machine["id"], "started", START_TIMEOUT, machine.get("version", ""))
        url = public_url(spec, app)
        await _healthy(url, START_TIMEOUT)
        details = {"app": app, "url": url, "config": config["metadata"]["dac_config"], "version": machine["version"]}
        details["region"] = machine.get("region") or body["region"]
        return Resource("orchestrator", name, machine["id"], created, details)

    async def query(self, ctx: Context, resource: Resource) -> Health:
        async with self.api() as api:
            if resource.kind == "fly-app":
                found = await api.get_app(resource.id) is not None
                return Health(found, "" if found else f"Fly app {resource.id} is gone")
            app = resource.details["app"]
            if resource.kind == "fly-volume":
                volume = await api.get_volume(app, resource.id)
                return Health(volume is not None, "" if volume else f"volume {resource.id} is gone")
            machine = await api.get_machine(app, resource.id)
        if machine is None or machine.get("state") != "started":
            return Health(False, f"machine {resource.id} is {machine.get('state') if machine else 'gone'}")
        wanted = machine_config(ctx.spec, self.bundle(ctx), _volume_id(ctx), resource.name)["metadata"]["dac_config"]
        if _config_digest(machine) != wanted:
            return Health(False, "config changed: update due", update=True)
        try:
            await _healthy(resource.details["url"], 5)
        except ProviderError as exc:
            return Health(False, str(exc))
        return Health(True)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        async with self.api() as api:
            if resource.kind == "fly-app":
                await api.delete_app(resource.id)
            elif resource.kind == "fly-volume":
                await api.delete_volume(resource.details["app"], resource.id)
            else:
                app = resource.details["app"]
                await api.stop_machine(app, resource.id, STOP_TIMEOUT)
                await api.delete_machine(app, resource.id)

    async def sweep(self, spec: DeploySpec) -> list[str]:
        """Delete the deployment's apps found by name and machine metadata; returns what went."""
        gone = []
        async with self.api() as api:
            for app in await api.list_apps(spec.fly.org):
                name = app.get("name", "")
                ours = {spec.fly.app, f"{spec.fly.app}-scaler"}  # the orchestrator's app, the controller's
                if name not in ours and not name.startswith(f"dac-{spec.name}-"):
                    continue
                if name != spec.fly.app and not await api.machines(name, dac_deployment=spec.name):
                    continue
                await api.delete_app(name)
                gone.append(f"Fly app {name}")
        return gone


def region_of(spec: DeploySpec, name: str) -> str:
    """Replica ``orchestrator-N`` goes to the Nth region of ``fly.regions`` (in turn), the first to the first."""
    regions = spec.fly.regions or [spec.fly.region]
    index = int(name.rsplit("-", 1)[1]) - 1 if name.rsplit("-", 1)[-1].isdigit() else 0
    return regions[index % len(regions)]


def store_secret(spec: DeploySpec, given: str | None = None) -> dict[str, str]:
    """The shared store's URL, for Fly's secret store (never a machine's config): ``given`` (a Pulumi
    secret), else read from the variable the spec names at the moment it is needed."""
    if spec.store.backend != "postgres":
        return {}
    name = spec.store.url_env or ""
    url = given or os.environ.get(name)
    if not url:
        raise ProviderError(f"store.url-env names {name}, which is not set: the orchestrators need the database URL")
    return {"DAC_STORE_URL": url}


def _volume_id(ctx: Context) -> str | None:
    volume = ctx.resources.get("fly-volume")
    return volume.id if volume is not None and ctx.spec.store.backend == "sqlite" else None


def _replica(machine: dict[str, Any]) -> str:
    """Which orchestrator a machine is (machines from before replicas carry no name: the first)."""
    return ((machine.get("config") or {}).get("metadata") or {}).get("dac_orchestrator") or "orchestrator"


def _config_digest(machine: dict[str, Any]) -> str | None:
    return ((machine.get("config") or {}).get("metadata") or {}).get("dac_config")


async def _healthy(url: str, seconds: float) -> None:
    """Until ``/healthz`` answers 200 through the public URL (Fly's proxy, TLS and all)."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    async with httpx.AsyncClient(base_url=url, timeout=5, verify=tls_context()) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get("/healthz")
                if response.status_code == 200:
                    return
                last = f"healthz answered {response.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.2)
    raise ProviderError(f"orchestrator at {url} not healthy within {seconds:.0f} s ({last})")


__all__ = ["FlyError", "FlyProvider", "machine_config", "public_url"]
