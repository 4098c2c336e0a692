"""The embedded default: one SQLite file (WAL), on the orchestrator's own disk.

Plain ``sqlite3`` on the event loop thread: every statement here is a small indexed read or write on
a local file, so a thread hop would cost more than it saves. The async primitives therefore never
wait; they are async so that callers are written once for both backends.

Group commit: the first write in an event-loop turn opens a transaction and the end of that turn
commits it, so a burst of status changes and output rows costs one commit instead of one each. An
awaited :meth:`commit` (a caller about to act outside: send an assign, tell a worker its result is
recorded) waits for that same end-of-turn commit, so the callers of one turn share one commit too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .base import Row, Store
from .migrations import TABLE, migrations

#: Columns added before migrations were numbered, by table: a database from then lacks some of them,
#: and gets them before the baseline (0001) is recorded, so no row of it is lost.
LEGACY_COLUMNS = {
    "executions": {
        "submitted_by": "TEXT",
        "submitter": "TEXT",
        "given_credentials": "TEXT",
        "retry_of": "TEXT",
        "chain_id": "TEXT",
        "actions": "TEXT",
    },
    "worker_tokens": {"issued_by": "TEXT"},
    "worker_time": {"seen_at": "REAL"},
}


class SQLiteStore(Store):
    def __init__(self, path: Path | str) -> None:
        self.path = self.location = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the mode of the
            # database file, and chmod-ing afterwards left those two (they hold recent rows) at 0644.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            for suffix in ("", "-wal", "-shm"):
                if Path(self.path + suffix).exists():
                    Path(self.path + suffix).chmod(0o600)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        #: resolved by the commit that ends this turn's transaction (for the callers awaiting it)
        self._turn: asyncio.Future[None] | None = None
        self.migrate()

    # --- schema -----------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the migrations this file lacks; the versions applied."""
        db = self.db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.execute(TABLE)
        if "executions" in tables and "schema_migrations" not in tables:
            self._adopt_legacy(tables)
        done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
        applied = []
        for migration in migrations("sqlite"):
            if migration.version in done:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(migration.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            applied.append(migration.version)
        return applied

    def _adopt_legacy(self, tables: set[str]) -> None:
        """A database from before numbered migrations: add the columns it may lack, then 0001 (all
        ``IF NOT EXISTS``) creates only the tables it never had."""
        for table, added in LEGACY_COLUMNS.items():
            if table not in tables:
                continue
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for column, kind in added.items():
                if column not in columns:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def schema_version(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])

    # --- primitives -------------------------------------------------------------------------------

    def write(self, sql: str, *args: Any) -> None:
        self._in_group()
        self.db.execute(sql, args)

    def _in_group(self) -> None:
        """Open this loop turn's transaction unless one is open; the end of the turn commits it."""
        if not self.db.in_transaction:
            loop = _running_loop()
            if loop is not None:  # without an event loop (tools, tests) every write commits at once
                self.db.execute("BEGIN")
                loop.call_soon(self._commit_now)

    async def fetch_grouped(self, sql: str, *args: Any) -> list[Row]:
        self._in_group()
        return self.db.execute(sql, args).fetchall()

    async def execute_grouped(self, sql: str, *args: Any) -> int:
        self._in_group()
        return self.db.execute(sql, args).rowcount

    def write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.write(sql, *rows[0])
            self.db.executemany(sql, rows[1:])

    async def execute(self, sql: str, *args: Any) -> int:
        return self.db.execute(sql, args).rowcount

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self.db.execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return self.db.execute(sql, args).fetchone()

    async def commit(self) -> None:
        if not self.db.in_transaction:
            return
        loop = _running_loop()
        if loop is None:
            self._commit_now()
            return
        if self._turn is None:
            self._turn = loop.create_future()
        # shielded: a caller cancelled while it waits must not cancel the others' wait
        await asyncio.shield(self._turn)

    def _commit_now(self) -> None:
        turn, self._turn = self._turn, None
        try:
            if self.db.in_transaction:
                self.db.commit()
        except sqlite3.Error as exc:
            if turn is not None and not turn.done():
                turn.set_exception(exc)
            raise
        if turn is not None and not turn.done():
            turn.set_result(None)

    async def load_tables(self, tables: list[tuple[str, list[str], list[tuple[Any, ...]]]]) -> None:
        self._commit_now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for table, columns, rows in tables:
                marks = ", ".join("?" * len(columns))
                self.db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        self._commit_now()
        self.db.close()


def _statements(script: str) -> list[str]:
    """A migration's statements (``sqlite3.complete_statement`` decides where each one ends)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _running_loop() -> asyncio.AbstractEventLoop | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop()
    return None
