"""Where the orchestrator keeps what must outlive it: executions, output, sealed secrets, the team.

One interface (:class:`Store`, in ``base``), two backends: ``sqlite`` (the embedded default, a file
on the orchestrator's disk) and ``postgres`` (asyncpg; what several orchestrators share). The schema
is in numbered ``migrations/``, one folder per backend; :func:`open_store` applies what is missing.
"""

from __future__ import annotations

from .base import Dialect, Row, Store, StoreUnavailable
from .sqlite import SQLiteStore

__all__ = ["Dialect", "Row", "SQLiteStore", "Store", "StoreUnavailable", "is_postgres", "open_store"]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


async def open_store(url: str, *, timeout_s: float = 5.0) -> Store:
    """``postgres[ql]://…`` for PostgreSQL; ``sqlite:///PATH`` or a plain path for SQLite."""
    if is_postgres(url):
        from .postgres import PostgresStore  # asyncpg only where PostgreSQL is used

        return await PostgresStore.open(url, timeout_s=timeout_s)
    return SQLiteStore(url.removeprefix("sqlite://") if url.startswith("sqlite://") else url)
