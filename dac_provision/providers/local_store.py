"""A local deployment's PostgreSQL store (``store.backend = "postgres"``): the server as one of its
processes, or a database the team already has (``store.url-env``). Either way the orchestrators read
the URL from a 0600 file in the deployment's folder, never from their environment or argv.

As root, PostgreSQL runs as the package's ``postgres`` user, which cannot reach a folder under
root's 0700 home: the data then lives under ``/var/lib/dac-provision/`` (one folder per deployment
folder), the rest of the deployment's state stays where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
from pathlib import Path

from . import processes
from .base import Context, ProviderError, Resource
from .postgres import PostgresMissing, PostgresServer

DATABASE = "dac"
SYSTEM_ROOT = Path("/var/lib/dac-provision")


def data_root(ctx: Context) -> Path:
    if os.geteuid() != 0:
        return ctx.directory / "postgres"
    tag = hashlib.sha256(str(ctx.directory).encode()).hexdigest()[:12]
    return SYSTEM_ROOT / f"{ctx.spec.name}-{tag}"


def url_file(ctx: Context) -> Path | None:
    """Where the orchestrators read the store's URL, or None for a SQLite store."""
    if ctx.spec.store.backend != "postgres":
        return None
    path = ctx.directory / "secrets" / "store-url"
    if ctx.spec.store.url_env:  # the team's own database: its URL from the operator's environment
        url = os.environ.get(ctx.spec.store.url_env)
        if not url:
            raise ProviderError(f"store.url-env: {ctx.spec.store.url_env} is not set in this environment")
        _write_secret(path, url)
    return path


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)


async def start(ctx: Context, port: int) -> Resource:
    """Start (first time: initialise) the deployment's PostgreSQL server and its database."""
    root = data_root(ctx)
    server = PostgresServer(root, port)
    log = ctx.directory / "logs" / "postgres.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        fresh = not (root / "data" / "PG_VERSION").exists()
        if fresh:
            await asyncio.to_thread(server.init)
        else:
            server.load_password()
        await asyncio.to_thread(server.start, log)
        if fresh:
            await asyncio.to_thread(server.create_database, DATABASE)
    except PostgresMissing as exc:
        raise ProviderError(str(exc)) from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ProviderError(f"PostgreSQL did not start: {exc}", log) from None
    assert server.proc is not None
    _write_secret(ctx.directory / "secrets" / "store-url", server.url(DATABASE))
    started = processes.start_time(server.proc.pid)
    if started is None:
        raise ProviderError("PostgreSQL exited at once", log)
    details = {"pid": server.proc.pid, "started": started, "port": port, "log": str(log), "root": str(root)}
    return Resource("postgres", "postgres", str(server.proc.pid), True, details)


async def stop(resource: Resource, *, remove: bool) -> None:
    """A fast shutdown (SIGINT to its process group: open transactions roll back, the data stays
    consistent); ``remove`` also deletes its data (destroy)."""
    handle = processes.Handle.from_details(resource.details)
    if processes.alive(handle):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(handle.pid, signal.SIGINT)
        if not await asyncio.to_thread(processes.wait_gone, handle, 20):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(handle.pid, signal.SIGKILL)
            await asyncio.to_thread(processes.wait_gone, handle, 5)
    if remove:
        await asyncio.to_thread(shutil.rmtree, resource.details["root"], True)
