"""What every target shares: one small interface, so the engine never knows which target it drives.

A provider turns a planned :class:`~dac_provision.plan.Desired` into a :class:`Resource` (create, or
adopt what already exists under that name), tells whether a recorded resource is still healthy
(query), removes it (delete), and says when the whole deployment is ready to serve (wait_ready).
Every verb is idempotent: the engine may call it again after a crash at any point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..plan import Desired
    from ..runtime_env import Secrets
    from ..spec import DeploySpec


class LoggedError(Exception):
    """An error whose details are in a log file (``log_path``); the message never contains a secret."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class ProviderError(LoggedError):
    """A provider could not do what was asked. The message names the resource and the cause."""


@dataclass
class Resource:
    """One thing a provider created or adopted, as the state store records it."""

    kind: str
    name: str
    id: str
    created: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Health:
    ok: bool
    detail: str = ""
    #: It exists but is out of date: ``create`` again brings it up to date in place (no delete first).
    update: bool = False


@dataclass
class Context:
    """What a provider may use while it works on one deployment."""

    spec: DeploySpec
    secrets: Secrets
    directory: Path
    #: The deployment's resources by name as recorded so far; the engine updates it as it goes.
    resources: dict[str, Resource] = field(default_factory=dict)
    #: The Kafka SASL password when the caller holds it (a Pulumi secret); else read from ``password-env``.
    kafka_password: str | None = field(default=None, repr=False)
    #: The shared store's PostgreSQL URL when the caller holds it (a Pulumi secret, a database cluster's
    #: output); else read from ``store.url-env``.
    store_url: str | None = field(default=None, repr=False)


class Provider(Protocol):
    def preflight(self, ctx: Context) -> list[str]:
        """Problems that would make the deploy fail, found before anything is created."""
        ...

    async def create(self, ctx: Context, desired: Desired) -> Resource: ...

    async def query(self, ctx: Context, resource: Resource) -> Health: ...

    async def delete(self, ctx: Context, resource: Resource, *, drain: bool = False) -> None: ...

    async def wait_ready(self, ctx: Context, seconds: float) -> None: ...

    def ready_timeout(self, ctx: Context) -> float:
        """How long new workers may take to say hello (seconds for a process, minutes for a machine)."""
        ...

    def endpoint(self, ctx: Context) -> str | None:
        """The orchestrator's base URL, once it exists."""
        ...

    def endpoints(self, ctx: Context) -> list[str]:
        """Every orchestrator's base URL, the one to try first first (one address for a target that
        puts a proxy in front of its orchestrators)."""
        ...

    async def worker_log(self, ctx: Context, resource: Resource, lines: int, boot: bool = False) -> str:
        """The last ``lines`` of a worker's own log (the process's file, the machine's journal), or with
        ``boot`` how its machine's boot went."""
        ...
