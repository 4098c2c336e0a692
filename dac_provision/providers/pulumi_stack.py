"""``provider = "pulumi"``: the deployment is a Pulumi stack of ``stacks/dac-cloud``, driven through the
Automation API, so ``dac-provision deploy`` and ``pulumi up`` are the same program with the same config.

The stack's config is written from the spec by :func:`stack_config` (the stack reads it back into the
same spec); the deployment's secrets go in as Pulumi secrets. ``pulumi up`` itself needs the Pulumi
CLI; without it, preflight says how to get it in one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from ..plan import Desired, worker_names
from ..spec import DeploySpec, load_spec
from .base import Context, Health, ProviderError, Resource
from .digitalocean import droplet_name
from .fly_api import tls_context
from .readiness import require_registered
from .workers_boot import ssh_public_key

STACKS = Path(__file__).resolve().parent.parent.parent / "stacks"
INSTALL = (
    "the pulumi provider runs `pulumi up` and needs the Pulumi CLI on PATH:"
    " install it (https://www.pulumi.com/docs/install/), or deploy with --provider cloud"
)


def stack_config(spec: DeploySpec, ctx: Context | None = None) -> dict[str, tuple[str, bool]]:
    """``dac:`` stack config for ``spec``: key -> (value, is_secret). With ``ctx``, the deployment's
    secrets and SSH key too."""
    data = spec.to_dict()
    config = {
        "dac:name": (spec.name, False),
        "dac:workers": (str(spec.workers), False),
        "dac:agentCommand": (shlex.join(spec.agent_command), False),
    }
    for section in SECTIONS:
        config[f"dac:{section}"] = (json.dumps(data[section]), False)
    if ctx is not None:
        config["dac:masterKey"] = (ctx.secrets.master_key, True)
        config["dac:ownerApiKey"] = (ctx.secrets.owner_api_key, True)
        config["dac:sshPublicKey"] = (ssh_public_key(ctx), False)
        if ctx.kafka_password:
            config["dac:kafkaPassword"] = (ctx.kafka_password, True)
        store_url = ctx.store_url or (os.environ.get(spec.store.url_env) if spec.store.url_env else None)
        if store_url:  # the database several orchestrators share, a stack secret like the keys
            config["dac:storeUrl"] = (store_url, True)
    return config


#: Stack config keys that hold a section of the spec, as in a spec file.
SECTIONS = ("kafka", "fly", "digitalocean", "limits", "orchestrator", "store")


def spec_from_config(config: Any, provider: str = "cloud") -> DeploySpec:
    """A stack's ``dac:`` config (a ``pulumi.Config``) as a DeploySpec, validated with the library's
    messages: the inverse of :func:`stack_config`."""
    import pulumi

    data: dict[str, Any] = {"provider": provider, "name": config.get("name") or pulumi.get_stack()}
    if config.get_int("workers") is not None:
        data["workers"] = config.get_int("workers")
    if config.get("agentCommand"):
        data["agent-command"] = config.get("agentCommand")
    for section in SECTIONS:
        value = config.get_object(section)
        if value is not None:
            data[section] = value
    sasl = (data.get("kafka") or {}).get("security-protocol", "").startswith("SASL")
    if sasl:  # the password is the stack secret dac:kafkaPassword; the spec only names where it goes
        data["kafka"].setdefault("password-env", "DAC_KAFKA_PASSWORD")
    return load_spec(data, source=f"stack config of {pulumi.get_stack()}")


class PulumiProvider:
    def preflight(self, ctx: Context) -> list[str]:
        if shutil.which("pulumi") is None:
            return [INSTALL]
        try:
            import pulumi.automation  # noqa: F401
        except ImportError:
            return ["the pulumi provider needs the Pulumi SDKs: pip install 'dac-provision[pulumi]'"]
        return []

    def _stack(self, ctx: Context) -> Any:
        from pulumi import automation

        name = ctx.spec.pulumi.stack or ctx.spec.name
        return automation.create_or_select_stack(stack_name=name, work_dir=str(STACKS / ctx.spec.pulumi.program))

    async def create(self, ctx: Context, desired: Desired) -> Resource:
        from pulumi import automation

        from ..runtime_env import kafka_password

        ctx.kafka_password = ctx.kafka_password or kafka_password(ctx.spec)
        log = ctx.directory / "logs" / "pulumi.log"
        log.parent.mkdir(parents=True, exist_ok=True)

        def up() -> dict[str, Any]:
            stack = self._stack(ctx)
            for key, (value, secret) in stack_config(ctx.spec, ctx).items():
                stack.set_config(key, automation.ConfigValue(value=value, secret=secret))
            with log.open("a") as handle:
                result = stack.up(on_output=lambda line: handle.write(line + "\n"))
            return {k: v.value for k, v in result.outputs.items()}

        try:
            outputs = await asyncio.to_thread(up)
        except Exception as exc:  # the Automation API raises CommandError with pulumi's own output
            raise ProviderError(f"pulumi up failed ({type(exc).__name__}); see the log", log) from None
        details = {"url": outputs["orchestratorUrl"], "workers": outputs.get("workerNames", [])}
        return Resource("pulumi-stack", "stack", ctx.spec.pulumi.stack or ctx.spec.name, True, details)

    async def query(self, ctx: Context, resource: Resource) -> Health:
        # A stack is only as current as its last `pulumi up`: run it again (it changes nothing if nothing drifted).
        return Health(False, "pulumi refresh and up on every deploy", update=True)

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None:
        def destroy() -> None:
            stack = self._stack(ctx)
            stack.destroy()
            stack.workspace.remove_stack(stack.name)

        await asyncio.to_thread(destroy)

    def endpoint(self, ctx: Context) -> str | None:
        recorded = ctx.resources.get("stack")
        return recorded.details["url"] if recorded else None

    def endpoints(self, ctx: Context) -> list[str]:
        url = self.endpoint(ctx)  # the stack's one address (Fly's proxy) in front of its orchestrators
        return [url] if url else []

    def ready_timeout(self, ctx: Context) -> float:
        return float(ctx.spec.digitalocean.ready_timeout_s)

    async def wait_ready(self, ctx: Context, seconds: float) -> None:
        expected = {droplet_name(ctx.spec, name) for name in worker_names(ctx.spec)}
        url = self.endpoint(ctx)
        if not expected or url is None:
            return
        await require_registered(url, ctx.secrets.owner_api_key, expected, seconds, None, tls_context(), poll=0.25)

    async def worker_log(self, ctx: Context, resource: Resource, lines: int, boot: bool = False) -> str:
        raise ProviderError("a pulumi deployment's workers: see `pulumi stack output workerAddresses` and SSH in")
