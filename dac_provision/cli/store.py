"""``dac-provision store``: where a deployment's orchestrator keeps its state, and moving it.

A team outgrowing one orchestrator moves its SQLite store to PostgreSQL with ``store migrate``: every
row is copied as it is (sealed secrets stay sealed under the deployment's master key, keys and tokens
stay hashed), so nobody is re-invited and no worker re-registers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from dac_runtime.orchestrator.store import StoreUnavailable, is_postgres, open_store
from dac_runtime.orchestrator.store.copy import CopyRefused, copy_store
from dac_runtime.orchestrator.store.postgres import redact

from ..providers.processes import Handle, alive
from ..state import StateStore
from .common import BadInput, Failure, err, friendly, json_option, name_option, out


@click.group()
def store() -> None:
    """The orchestrator's store: SQLite (one orchestrator) or PostgreSQL (several).

    \b
    Example:
      dac-provision store migrate --to postgres postgresql://dac@db.internal:5432/dac
    """


@store.command(name="migrate")
@name_option
@click.option("--to", "backend", type=click.Choice(["postgres"]), required=True, help="The backend to move to.")
@click.argument("url")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The SQLite file to copy (default: the local deployment's).",
)
@json_option
@friendly
def migrate(name: str, backend: str, url: str, source: Path | None, as_json: bool) -> None:
    """Copy a deployment's store into an empty PostgreSQL database (stop its orchestrator first).

    URL names the database. Its password does not go on the command line (the process list and
    shell history keep it): put it in ~/.pgpass or PGPASSWORD, or give - and the whole URL on stdin.

    \b
    Example:
      PGPASSWORD=... dac-provision store migrate --to postgres postgresql://dac@127.0.0.1:5432/dac
      dac-provision store migrate --to postgres - < store-url.txt
    """
    if url == "-":
        url = sys.stdin.readline().strip()
    elif urlsplit(url).password:
        raise BadInput("the URL holds a password: give - and the URL on stdin, or use ~/.pgpass or PGPASSWORD")
    if not is_postgres(url):
        raise BadInput("URL must be postgres:// or postgresql://")
    if source is None:
        source = _local_store(name)
    copied = asyncio.run(_copy(source, url))
    if as_json:
        out.print_json(json.dumps({"source": str(source), "target": redact(url), "rows": copied}))
        return
    err.print(f"{name}: copied {sum(copied.values())} row(s) from {source} to {redact(url)}")
    for table, count in copied.items():
        out.print(f"  {table:<18} {count}")
    err.print("next: start the orchestrator with the URL (DAC_STORE_URL_FILE); keep the SQLite file until it runs")


def _local_store(name: str) -> Path:
    """The local deployment's SQLite file; refused while its orchestrator runs (it would go on writing)."""
    state = StateStore()
    try:
        if state.deployment(name) is None:
            raise BadInput(f"no deployment named {name!r} here (give --from PATH for another SQLite file)")
        path = state.deployment_dir(name) / "orchestrator.db"
        for resource in state.resources(name, "orchestrator"):
            if "pid" in resource.details and alive(Handle.from_details(resource.details)):
                raise BadInput(
                    f"the orchestrator of {name!r} is running (pid {resource.details['pid']}): stop it first,"
                    " so that nothing is written to the store while it is copied"
                )
    finally:
        state.close()
    if not path.exists():
        raise BadInput(f"{path} does not exist: deployment {name!r} keeps no SQLite store here")
    return path


async def _copy(source_path: Path, url: str) -> dict[str, int]:
    source = await open_store(str(source_path))
    try:
        try:
            target = await open_store(url)
        except StoreUnavailable as exc:
            raise Failure(str(exc)) from None
        try:
            return await copy_store(source, target)
        except CopyRefused as exc:
            raise BadInput(str(exc)) from None
        finally:
            await target.close()
    finally:
        await source.close()
