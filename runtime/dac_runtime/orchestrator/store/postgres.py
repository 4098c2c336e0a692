"""PostgreSQL through asyncpg: the store several orchestrators share.

Writes nobody waits for are queued and sent by one writer task, in order, a batch per transaction
(what one event-loop turn queued, and whatever queued while the previous batch was in flight), with
runs of one statement sent as one ``executemany``. A write whose result its caller needs (a dispatch
claim, a recorded end: ``fetch_grouped``/``execute_grouped``) joins the same queue and is answered
once its batch is committed, so a burst of them costs a transaction, not a round trip and a flush
wait each. Anything else that waits (a read, an ``execute``, a ``commit``) first waits for the writes
queued before it, so a caller reads its own writes, as it does on SQLite.

When the server does not answer, the writer keeps its queue and retries with backoff; callers that
wait get :class:`StoreUnavailable` after ``timeout_s`` (the API answers 503 with ``Retry-After``), and
nothing queued is lost while this process lives. A statement the server refuses (bad data, not a lost
connection) is retried alone, so one bad row cannot take a batch's other writes with it; it is logged
by its table, never with its values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .base import Dialect, Row, Store, StoreUnavailable
from .migrations import TABLE, migrations

log = logging.getLogger("dac.orchestrator.store")
#: A write waited on: the connection method that runs it (``fetch``, ``execute``) and its answer.
Wanted = tuple[str, "asyncio.Future[Any]"] | None
#: A queued write: the statement, its arguments, and who waits for its result (None: nobody).
Queued = tuple[str, tuple[Any, ...], Wanted]
PLACEHOLDER = re.compile(r"\?(\d*)")
#: One key for the advisory lock that migrations take, so orchestrators starting together apply each once.
MIGRATION_LOCK = 0x64616301
#: Errors that mean "the server is not there right now", not "this statement is wrong".
UNREACHABLE = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    TimeoutError,
)


class PostgresDialect(Dialect):
    name = "postgres"

    def least(self, *terms: str) -> str:
        return f"LEAST({', '.join(terms)})"

    def greatest(self, *terms: str) -> str:
        return f"GREATEST({', '.join(terms)})"

    def json_number(self, column: str, key: str) -> str:
        return f"(({column})::jsonb ->> '{key}')::double precision"

    def utc_day(self, column: str) -> str:
        return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def now(self) -> str:
        return "EXTRACT(EPOCH FROM clock_timestamp())::double precision"


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def storable(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """PostgreSQL's text cannot hold NUL (SQLite's can, and an agent may print one): it becomes U+FFFD,
    the replacement character, instead of the server refusing the row and its output being lost."""
    if not any(isinstance(a, str) and "\x00" in a for a in args):
        return args
    return tuple(a.replace("\x00", "\ufffd") if isinstance(a, str) else a for a in args)


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """No reset query when a connection goes back to the pool: the store keeps no session state (no
    LISTEN, no session advisory lock, no SET), and asyncpg's default reset cost a round trip for
    every statement the pool ran."""

    def get_reset_query(self) -> str:
        return ""


class PostgresStore(Store):
    sql = PostgresDialect()
    shared = answers_durable = True

    def __init__(self, pool: asyncpg.Pool, location: str, timeout_s: float) -> None:
        self._pool = pool
        self.location = location
        self.timeout_s = timeout_s
        self._queue: list[Queued] = []
        self._next: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._translated: dict[str, str] = {}
        self._writer = asyncio.get_running_loop().create_task(self._write_forever(), name="store-writer")
        #: False from a failed attempt to reach the server until the next one that works
        self.reachable = True

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 5.0, pool_size: int = 10) -> PostgresStore:
        location = redact(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=timeout_s,
                command_timeout=max(timeout_s, 30.0),
                connection_class=_Connection,
            )
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at {location}: {type(exc).__name__}") from None
        except asyncpg.PostgresError as exc:  # wrong password, no such database, ...
            raise StoreUnavailable(f"PostgreSQL at {location} refused the connection: {exc}") from None
        store = cls(pool, location, timeout_s)
        await store.migrate()
        return store

    # --- schema -----------------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        applied = []
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(TABLE)
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in migrations("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    time.time(),
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        return int(await self.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") or 0)

    # --- primitives -------------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        """``?`` and ``?N`` placeholders as PostgreSQL's ``$N`` (queries are constants: cached)."""
        translated = self._translated.get(sql)
        if translated is None:
            counter = iter(range(1, 1000))
            translated = PLACEHOLDER.sub(lambda m: f"${m[1] or next(counter)}", sql)
            self._translated[sql] = translated
        return translated

    def write(self, sql: str, *args: Any) -> None:
        self._queue.append((self._sql(sql), storable(args), None))
        self._wake.set()

    async def fetch_grouped(self, sql: str, *args: Any) -> list[Row]:
        return await self._answered(sql, args, "fetch")

    async def execute_grouped(self, sql: str, *args: Any) -> int:
        return _count(await self._answered(sql, args, "execute"))

    async def _answered(self, sql: str, args: tuple[Any, ...], method: str) -> Any:
        """Queue a write whose result is wanted; its result once its batch is committed. A caller that
        gives up (``StoreUnavailable``) cannot know whether it will still land: the write stays queued."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((self._sql(sql), storable(args), (method, answer)))
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(answer), self.timeout_s)
        except TimeoutError:
            raise StoreUnavailable(
                f"PostgreSQL at {self.location} did not take writes in {self.timeout_s:g}s"
            ) from None

    async def _flushed(self) -> None:
        """Wait until every write queued so far is committed."""
        if self._queue:
            done = self._next
        elif self._inflight is not None:
            done = self._inflight
        else:
            return
        try:
            await asyncio.wait_for(asyncio.shield(done), self.timeout_s)
        except TimeoutError:
            raise StoreUnavailable(
                f"PostgreSQL at {self.location} did not take writes in {self.timeout_s:g}s"
            ) from None

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                self._inflight, self._next = self._next, asyncio.get_running_loop().create_future()
                await self._send(batch)
                self._inflight.set_result(None)
                self._inflight = None

    async def _send(self, batch: list[Queued]) -> None:
        """One transaction for the batch, retried until the server takes it; the answers of those
        waiting for one are given once it is committed."""
        delay = 0.05
        while True:
            answers: list[tuple[asyncio.Future[Any], Any]] = []
            try:
                async with self._pool.acquire(timeout=self.timeout_s) as conn:
                    runs = _runs(batch)
                    # One statement is a transaction of its own: no BEGIN and COMMIT round trips (the
                    # common case when requests come one at a time, a dispatch's claim alone).
                    alone = len(runs) == 1 and len(runs[0][1]) == 1
                    try:
                        async with contextlib.nullcontext() if alone else conn.transaction():
                            for sql, rows, wanted in runs:
                                if wanted is not None:
                                    method, answer = wanted
                                    answers.append((answer, await getattr(conn, method)(sql, *rows[0])))
                                elif len(rows) == 1:
                                    await conn.execute(sql, *rows[0])
                                else:
                                    await conn.executemany(sql, rows)
                    except asyncpg.PostgresError as exc:
                        if isinstance(exc, UNREACHABLE):
                            raise
                        answers = await self._send_alone(conn, batch, exc)
                self.reachable = True
                for answer, result in answers:
                    if not answer.done():
                        if isinstance(result, BaseException):
                            answer.set_exception(result)
                        else:
                            answer.set_result(result)
                return
            except UNREACHABLE as exc:
                if self.reachable:
                    log.warning("PostgreSQL at %s unreachable, holding writes: %s", self.location, type(exc).__name__)
                self.reachable = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _send_alone(
        self, conn: asyncpg.Connection, batch: list[Queued], why: Exception
    ) -> list[tuple[asyncio.Future[Any], Any]]:
        """The batch had a statement the server refuses: send each on its own, skipping the refused
        (a caller waiting on one gets the server's refusal as its answer)."""
        log.warning("a write batch was refused (%s); sending its statements one by one", type(why).__name__)
        answers: list[tuple[asyncio.Future[Any], Any]] = []
        for sql, args, wanted in batch:
            try:
                result = await getattr(conn, wanted[0] if wanted else "execute")(sql, *args)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, UNREACHABLE):
                    raise
                log.error("dropped one write refused by PostgreSQL (%s): %s", type(exc).__name__, _table(sql))
                result = exc
            if wanted is not None:
                answers.append((wanted[1], result))
        return answers

    async def execute(self, sql: str, *args: Any) -> int:
        await self._flushed()
        return _count(await self._call("execute", sql, args))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        await self._flushed()
        return await self._call("fetch", sql, args)

    async def _call(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            async with self._pool.acquire(timeout=self.timeout_s) as conn:
                result = await getattr(conn, method)(self._sql(sql), *storable(args), timeout=self.timeout_s)
        except UNREACHABLE as exc:
            self.reachable = False
            raise StoreUnavailable(f"PostgreSQL at {self.location} unreachable: {type(exc).__name__}") from None
        self.reachable = True
        return result

    async def commit(self) -> None:
        await self._flushed()

    async def load_tables(self, tables: list[tuple[str, list[str], list[tuple[Any, ...]]]]) -> None:
        """COPY each table's rows in one transaction; generated ids continue past the copied ones."""
        await self._flushed()
        async with self._pool.acquire(timeout=self.timeout_s) as conn, conn.transaction():
            for table, columns, rows in tables:
                await conn.copy_records_to_table(table, records=[storable(r) for r in rows], columns=columns)
                if "id" in columns and await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table):
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"  # noqa: S608
                    )

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._flushed(), self.timeout_s)
        except (StoreUnavailable, TimeoutError):
            log.error("closing with %d write(s) PostgreSQL did not take", len(self._queue))
        self._writer.cancel()
        await self._pool.close()


def _runs(batch: list[Queued]) -> list[tuple[str, list[tuple[Any, ...]], Wanted]]:
    """Consecutive writes of one statement nobody waits on, grouped (order kept); a write whose
    result is wanted stays on its own."""
    runs: list[tuple[str, list[tuple[Any, ...]], Wanted]] = []
    for sql, args, wanted in batch:
        if wanted is None and runs and runs[-1][0] == sql and runs[-1][2] is None:
            runs[-1][1].append(args)
        else:
            runs.append((sql, [args], wanted))
    return runs


def _count(status: str) -> int:
    """The row count of a command status (``UPDATE 1``, ``INSERT 0 1``)."""
    count = status.rsplit(" ", 1)[-1]
    return int(count) if count.isdigit() else 0


def _table(sql: str) -> str:
    match = re.search(r"\b(?:INTO|UPDATE|FROM)\s+(\w+)", sql)
    return match[1] if match else "?"
