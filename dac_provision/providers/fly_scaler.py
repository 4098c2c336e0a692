"""The scaling controller's machine on the cloud target (``[scaling] with-deployment = true``).

It lives in an app of its own (``<app>-scaler``): Fly hands an app's secrets to every machine in it,
so the DigitalOcean and Fly tokens the controller needs sit in that app's secrets and never reach the
orchestrator's machine. The machine boots ``boot.py autoscaler`` from two files in its config: the
runtime wheel (what new workers install, checked by sha256) and dac_provision's source archive. Its
third secret is the hand-over (:func:`hand_over`): the spec, the records a controller acts on, and an
owner API key minted for it alone (named ``autoscaler``, revoked when the machine goes or a newer one
replaces it). Restart policy ``always``: a crashed controller comes back and resumes from what the
cloud has (``dac_provision.autoscale.hosted``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..bundle import Bundle, controller_source
from ..client import Client, ClientError
from .base import Context, Health, Resource
from .digitalocean import do_token
from .fly import STOCK_IMAGE, boot_script, file_entry
from .fly_api import FlyAPI, fly_token

SCALER_DIR = "/opt/dac/scaler"
START_TIMEOUT = 120.0
#: The records a controller acts on (workers are taken from the cloud by tag when it starts).
HANDED_OVER = ("fly-app", "do-ssh-key", "do-firewall")
#: Endpoint overrides the deploy itself used (a proxy, an emulator): the controller must use the same.
FORWARDED = ("DAC_DO_API_URL", "DAC_FLY_API_URL", "DAC_RETRY_BASE_S")


def scaler_app(ctx: Context) -> str:
    return f"{ctx.resources['fly-app'].id}-scaler"


def hand_over(ctx: Context, api_key: str) -> str:
    """What the controller's machine starts from, as one secret value (it holds an API key)."""
    resources = [asdict(r) for r in ctx.resources.values() if r.kind in HANDED_OVER]
    body = {"name": ctx.spec.name, "provider": ctx.spec.provider, "spec": ctx.spec.to_dict(), "resources": resources}
    return json.dumps(body | {"apiKey": api_key}, separators=(",", ":"))


def scaler_config(ctx: Context, wheel: Bundle, source: Bundle) -> dict[str, Any]:
    """The machine's config; no secret inside. Its digest covers the spec without the worker count (the
    controller owns that), so changing the policy rolls the machine and scaling does not."""
    spec = ctx.spec.to_dict()
    spec.pop("workers", None)
    env = {
        "DAC_BUNDLE_WHEEL": f"{SCALER_DIR}/{wheel.filename}",
        "DAC_BUNDLE_SHA256": wheel.sha256,
        "DAC_RUNTIME_WHEEL": f"{SCALER_DIR}/{wheel.filename}",  # what new workers are given
        "DAC_CONTROLLER_SOURCE": f"{SCALER_DIR}/{source.filename}",
        "DAC_CONTROLLER_SHA256": source.sha256,
    } | {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}
    config: dict[str, Any] = {
        "image": ctx.spec.fly.image or STOCK_IMAGE,
        "env": env,
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
        "files": [
            file_entry(env["DAC_BUNDLE_WHEEL"], wheel.path.read_bytes()),
            file_entry(env["DAC_CONTROLLER_SOURCE"], source.path.read_bytes()),
            file_entry("/opt/dac/boot.py", boot_script()),
        ],
        "init": {"cmd": ["python3", "/opt/dac/boot.py", "autoscaler"]},
        "restart": {"policy": "always"},
        "stop_config": {"signal": "SIGTERM", "timeout": "60s"},
        "metadata": {"dac_deployment": ctx.spec.name, "dac_role": "autoscaler"},
    }
    digest = hashlib.sha256(json.dumps([config, spec], sort_keys=True).encode()).hexdigest()[:16]
    config["metadata"]["dac_config"] = digest
    return config


class FlyScaler:
    kinds = ("autoscaler",)

    def __init__(self, wheel: Callable[[Context], Bundle]) -> None:
        self.wheel = wheel

    def config(self, ctx: Context) -> dict[str, Any]:
        return scaler_config(ctx, self.wheel(ctx), controller_source(ctx.directory / "bundle"))

    async def create(self, ctx: Context, desired: Any) -> Resource:
        app, token = scaler_app(ctx), fly_token() or ""
        config = self.config(ctx)
        url = ctx.resources["fly-app"].details["url"]
        async with Client(url, ctx.secrets.owner_api_key) as client:
            member = await client.add_member("autoscaler", "owner")
        async with FlyAPI(token) as api:
            if await api.get_app(app) is None:
                await api.create_app(app, ctx.spec.fly.org)
            values = {"DAC_SCALER_STATE": hand_over(ctx, member["apiKey"]), "FLY_API_TOKEN": token}
            version = await api.set_secrets(app, values | {"DIGITALOCEAN_TOKEN": do_token() or ""})
            body = {"config": config, "region": ctx.spec.fly.region, "min_secrets_version": version}
            existing = [m for m in await api.machines(app, dac_role="autoscaler") if m.get("state") != "destroyed"]
            if existing:  # a changed policy or code: the new config (and the new key) replace the old whole
                current = existing[0]
                update = body | {"current_version": current["version"]}
                machine = await api.update_machine(app, current["id"], update)
            else:
                machine = await api.create_machine(app, body | {"name": "autoscaler"})
            await api.wait_machine(app, machine["id"], "started", START_TIMEOUT, machine.get("version", ""))
        previous = ctx.resources.get("autoscaler")
        if previous is not None and previous.details.get("member"):
            await _revoke(url, ctx, previous.details["member"])
        details = {"app": app, "config": config["metadata"]["dac_config"], "member": member["id"]}
        return Resource("autoscaler", "autoscaler", machine["id"], True, details)

    async def query(self, ctx: Context, resource: Resource) -> Health:
        async with FlyAPI(fly_token() or "") as api:
            machine = await api.get_machine(resource.details["app"], resource.id)
        if machine is None or machine.get("state") != "started":
            return Health(False, f"controller machine {resource.id} is {machine.get('state') if machine else 'gone'}")
        if ((machine.get("config") or {}).get("metadata") or {}).get("dac_config") != self.config(ctx)["metadata"][
            "dac_config"
        ]:
            return Health(False, "config changed: update due", update=True)
        return Health(True)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        """The machine first (it must stop acting before the workers go), then its app and its key."""
        app = resource.details["app"]
        async with FlyAPI(fly_token() or "") as api:
            if await api.get_machine(app, resource.id) is not None:
                await api.stop_machine(app, resource.id, "60s")
                await api.delete_machine(app, resource.id)
            if await api.get_app(app) is not None:
                await api.delete_app(app)
        if resource.details.get("member") and "fly-app" in ctx.resources:
            await _revoke(ctx.resources["fly-app"].details["url"], ctx, resource.details["member"])


async def _revoke(url: str, ctx: Context, member_id: str) -> None:
    try:
        async with Client(url, ctx.secrets.owner_api_key) as client:
            await client.remove_member(member_id)
    except ClientError as exc:
        if exc.status != 404:  # already gone is what was wanted
            raise
