"""The store's one interface: a few primitives each backend implements, and the queries built on them.

Every backend offers the same five primitives, with the same meaning:

- :meth:`Store.write` queues a statement whose result nobody waits for (a status change, an output
  row). Writes are *group-committed*: the ones made in one event-loop turn share one transaction.
- :meth:`Store.execute` runs a statement now, after every write queued before it, and says how many
  rows it changed (a conditional UPDATE that decides something: a spent invite, a used token).
- :meth:`Store.fetch` / :meth:`fetchrow` / :meth:`fetchval` read, and see every write queued before.
- :meth:`Store.commit` returns once everything so far is durable. Callers commit where something
  outside the process acts on a write: an assign is sent, a worker is told its result is recorded, a
  secret is confirmed. A crash loses at most the writes nobody outside had been told of.

So a caller sees its own writes in program order whichever backend runs. SQL is written once, in the
subset both dialects share (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``); where they differ, a
query asks :attr:`Store.sql` (:class:`Dialect`) for the piece.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

#: A row: both backends' rows read by column name or position, and ``dict(row)`` copies one.
Row = Any

EXECUTION_COLUMNS = (
    "id, persona_id, status, attempt, generation, worker_id, request, exit_code, duration_ms, usage, reason, "
    "created_at, updated_at, submitted_by, submitter, given_credentials, retry_of, chain_id, actions, owner"
)


class StoreUnavailable(Exception):
    """The database does not answer (down, restarting, cut off); the caller should retry later."""


class Dialect:
    """The pieces of SQL that differ between backends; SQLite's spelling here, PostgreSQL's in its own."""

    name = "sqlite"

    def least(self, *terms: str) -> str:
        return f"MIN({', '.join(terms)})"

    def greatest(self, *terms: str) -> str:
        return f"MAX({', '.join(terms)})"

    def json_number(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def utc_day(self, column: str) -> str:
        return f"strftime('%Y-%m-%d', {column}, 'unixepoch')"

    def now(self) -> str:
        """The store's clock in seconds since the epoch: leases are judged by one clock, the store's,
        not by each orchestrator's own."""
        return "((julianday('now') - 2440587.5) * 86400.0)"


class Primitives(ABC):
    """What each backend implements; every query is built on these."""

    sql: Dialect = Dialect()
    #: where the data lives, without a password (for logs and errors)
    location: str = ""
    #: whether several orchestrators may share this store (a server-side database): peers possible
    shared: bool = False
    #: whether a grouped write (:meth:`fetch_grouped`) is answered only once it is durable, so that
    #: its caller needs no :meth:`commit` of its own (SQLite's group commit comes after the answer)
    answers_durable: bool = False
    #: the fencing epoch of the orchestrator writing through this store, once it joined
    #: (:mod:`..cluster.membership`): its writes to executions hold only while its lease does
    fence: int | None = None

    # --- primitives (each backend) ----------------------------------------------------------------

    @abstractmethod
    def write(self, sql: str, *args: Any) -> None: ...

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int: ...

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def load_tables(self, tables: list[tuple[str, list[str], list[tuple[Any, ...]]]]) -> None:
        """Insert ``(table, columns, rows)`` for each table, in one transaction (a store copy)."""

    async def fetch_grouped(self, sql: str, *args: Any) -> list[Row]:
        """A write whose result its caller needs at once, durable at the next :meth:`commit` at the
        latest (SQLite makes it part of the loop turn's group commit instead of a commit of its own;
        a server-side store runs it as it comes). For a path that commits once for many such writes."""
        return await self.fetch(sql, *args)

    async def execute_grouped(self, sql: str, *args: Any) -> int:
        """:meth:`fetch_grouped` for a write whose row count is its result."""
        return await self.execute(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return row[0] if row is not None else None

    def write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            self.write(sql, *row)

    def lease_clause(self) -> tuple[str, tuple[Any, ...]]:
        """A condition that holds only while this orchestrator's lease does, by the store's clock (no
        condition before it joined: tools and tests beside a store)."""
        if self.fence is None:
            return "1 = 1", ()
        held = f"SELECT 1 FROM orchestrators WHERE epoch = ? AND state = 'up' AND expires_at > {self.sql.now()}"  # noqa: S608
        return f"EXISTS ({held})", (self.fence,)
