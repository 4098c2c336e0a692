"""Copy one store into another (SQLite -> PostgreSQL, when a team moves to several orchestrators).

Rows are copied as they are: sealed values stay sealed under the deployment's master key (which
moves with the deployment, not with the data), API keys and worker tokens stay hashed, so nobody is
re-invited and no worker re-registered. Both stores must be at the same schema version; the target
must be empty (a half-copied target is rolled back, not left behind), and the source should not be
written meanwhile (stop its orchestrator first).
"""

from __future__ import annotations

from typing import Any

from .base import Store

#: Every table of the schema, in an order that copies each before anything that names it.
TABLES = (
    "api_keys",
    "worker_tokens",
    "sealed",
    "personas",
    "credentials",
    "invites",
    "executions",
    "output",
    "kafka_outbox",
    "dead_letters",
    "worker_time",
    "console_sessions",
)


class CopyRefused(Exception):
    """The copy cannot start (versions differ, the target holds data); nothing was written."""


async def copy_store(source: Store, target: Store) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; rows copied per table."""
    versions = (await _version(source), await _version(target))
    if versions[0] != versions[1]:
        raise CopyRefused(f"schema versions differ (source {versions[0]}, target {versions[1]}): upgrade both first")
    for table in TABLES:
        if await target.fetchval(f"SELECT COUNT(*) FROM {table}"):  # noqa: S608 - names from TABLES
            raise CopyRefused(f"the target already holds data (table {table}): copy into an empty database")
    copied: dict[str, int] = {}
    loads = []
    for table in TABLES:
        rows = await source.fetch(f"SELECT * FROM {table}")  # noqa: S608
        copied[table] = len(rows)
        if rows:
            columns = list(dict(rows[0]).keys())
            loads.append((table, columns, [tuple(_plain(row[c]) for c in columns) for row in rows]))
    await target.load_tables(loads)  # one transaction: all of it lands, or none
    # Executions name their owner by fencing epoch: the target's epochs continue past the source's,
    # so no orchestrator that joins the target is ever mistaken for one that wrote the source.
    epoch = await source.fetchval("SELECT epoch FROM fencing WHERE id = 1")
    await target.execute("UPDATE fencing SET epoch = ? WHERE id = 1", int(epoch or 0))
    for table, count in copied.items():  # the copy is whole, or it is an error
        landed = int(await target.fetchval(f"SELECT COUNT(*) FROM {table}") or 0)  # noqa: S608
        if landed != count:
            raise RuntimeError(f"table {table}: copied {count} row(s), the target holds {landed}")
    return copied


async def _version(store: Store) -> int:
    return int(await store.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0)


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value
