"""What a new worker machine boots with: user data holding the orchestrator's URL, the runtime wheel's
address and checksum, and a registration token good for one batch, nothing long-lived.

The token is minted by the running orchestrator (``POST /api/worker-tokens``) with as many uses as the
batch has machines and a life as long as the provisioning timeout; each worker trades it on its first
hello for a credential of its own. The deployment's SSH key lives in its state folder (0600).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..bundle import Bundle
from ..client import Client, ClientError
from ..render import worker_user_data
from ..runtime_env import agent_command_line
from ..spec import DeploySpec
from .base import Context, ProviderError

#: Margin on top of the provisioning timeout for a registration token's life.
TOKEN_MARGIN_S = 600


def ssh_key_path(ctx: Context) -> Path:
    return ctx.directory / "ssh" / "id_ed25519"


def websocket_url(url: str) -> str:
    return "wss://" + url.removeprefix("https://").rstrip("/") + "/ws/worker"


def ssh_public_key(ctx: Context) -> str:
    """The deployment's key (generated on first use), in OpenSSH form."""
    path = ssh_key_path(ctx)
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} dac-{ctx.spec.name}"


class WorkerBoot:
    def __init__(self, endpoint: Callable[[Context], str | None], bundle: Callable[[Context], Bundle]) -> None:
        self.endpoint = endpoint
        self.bundle = bundle

    async def registration_token(self, ctx: Context, url: str, uses: int) -> str:
        ttl = ctx.spec.digitalocean.ready_timeout_s + TOKEN_MARGIN_S
        try:
            async with Client(url, ctx.secrets.owner_api_key, timeout=15) as client:
                return await client.create_worker_token(uses, ttl)
        except ClientError as exc:
            raise ProviderError(f"minting a registration token for {uses} workers: {exc}") from None

    async def user_data(self, ctx: Context, uses: int) -> str:
        url = self.endpoint(ctx)
        if url is None:
            raise ProviderError("workers need the orchestrator first (deploy creates it)")
        token = await self.registration_token(ctx, url, uses)
        return render_user_data(ctx.spec, url, self.bundle(ctx), token)


def render_user_data(spec: DeploySpec, url: str, bundle: Bundle, registration_token: str) -> str:
    """A worker machine's user data for this spec: what the cloud target sends, and what the Pulumi
    stack puts on its droplets, byte for byte."""
    return worker_user_data(
        orchestrator_url=websocket_url(url),
        bundle_url=f"{url}/bundle/{bundle.filename}",
        bundle_sha256=bundle.sha256,
        registration_token=registration_token,
        worker_id="{hostname}",
        agent_command=agent_command_line(spec),
        passthrough=list(spec.agent_passthrough),
        install_claude=spec.digitalocean.install_claude,
    )
