"""Burst workers: extra workers as Fly machines that run one execution each and are gone.

For a spike of work on top of the droplet pool. Each machine boots the same runtime wheel as the
orchestrator (``boot.py worker``), registers with a token minted for exactly this burst, takes one
execution (``DAC_EXIT_AFTER_JOB``), exits, and Fly destroys it (``auto_destroy``, restart ``no``). They
live in the deployment's Fly app, so ``destroy`` (which deletes the app) and ``--sweep`` take any left.
The token rides in the machine's env: it is good for this burst's hellos only and expires with the
provisioning timeout.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..bundle import runtime_wheel
from ..client import Client
from ..runtime_env import agent_command_line
from .base import Context, ProviderError
from .fly import BUNDLE_DIR, STOCK_IMAGE, boot_script, file_entry, guest_size
from .fly_api import FlyAPI, tls_context
from .readiness import require_registered
from .workers_boot import TOKEN_MARGIN_S, websocket_url


def burst_config(ctx: Context, url: str, token: str, wheel: tuple[str, str, bytes]) -> dict[str, Any]:
    """One burst worker's machine config. ``wheel`` is (file name, sha256, bytes)."""
    spec, (filename, sha256, data) = ctx.spec, wheel
    env = {
        "DAC_ORCHESTRATOR_URL": websocket_url(url),
        "DAC_WORKER_TOKEN": token,
        "DAC_WORKER_ID": "{hostname}",  # the machine's id
        "DAC_WORKER_PLACE": "fly",
        "DAC_AGENT_COMMAND": agent_command_line(spec),
        "DAC_EXIT_AFTER_JOB": "true",
        "DAC_EXIT_AFTER_IDLE_S": str(spec.scaling.burst_idle_s),  # the backlog it came for was taken
        "DAC_WORK_DIR": "/tmp",  # noqa: S108 - the machine's own, gone with it
        "DAC_BUNDLE_WHEEL": f"{BUNDLE_DIR}/{filename}",
        "DAC_BUNDLE_SHA256": sha256,
    }
    if spec.agent_passthrough:
        env["DAC_AGENT_PASSTHROUGH"] = ",".join(spec.agent_passthrough)
    return {
        "image": spec.fly.image or STOCK_IMAGE,
        "env": env,
        "guest": guest_size(spec),
        "files": [file_entry(f"{BUNDLE_DIR}/{filename}", data), file_entry("/opt/dac/boot.py", boot_script())],
        "init": {"cmd": ["python3", "/opt/dac/boot.py", "worker"]},
        "restart": {"policy": "no"},
        "auto_destroy": True,
        "metadata": {"dac_deployment": spec.name, "dac_role": "burst-worker"},
    }


async def burst(ctx: Context, api: FlyAPI, count: int, seconds: float) -> list[str]:
    """Start ``count`` one-job workers and wait until each has said hello; their machine ids."""
    app = ctx.resources["fly-app"].id
    url = ctx.resources["fly-app"].details["url"]
    bundle = runtime_wheel(ctx.directory / "bundle")
    async with Client(url, ctx.secrets.owner_api_key) as client:
        token = await client.create_worker_token(count, int(seconds) + TOKEN_MARGIN_S)
    config = burst_config(ctx, url, token, (bundle.filename, bundle.sha256, bundle.path.read_bytes()))
    ids = []
    for _ in range(count):
        body = {"name": f"burst-{secrets.token_hex(4)}", "region": ctx.spec.fly.region, "config": config}
        ids.append((await api.create_machine(app, body))["id"])
    if not ids:
        return ids
    try:
        await require_registered(url, ctx.secrets.owner_api_key, set(ids), seconds, None, tls_context(), poll=0.25)
    except ProviderError:
        for machine_id in ids:  # a burst that cannot serve must not linger and bill
            await api.delete_machine(app, machine_id)
        raise
    return ids
