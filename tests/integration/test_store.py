"""The store's one interface, held by both backends: every test here runs on SQLite and on a real
PostgreSQL server (``store_url`` is parametrised), plus what only one of them has (SQLite's in-place
upgrade of a database from before numbered migrations; PostgreSQL going away and coming back)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid

import msgspec
import pytest

from dac_runtime.orchestrator.cluster.membership import Membership
from dac_runtime.orchestrator.ops.usage import usage
from dac_runtime.orchestrator.store import StoreUnavailable, open_store
from dac_runtime.orchestrator.store.migrations import latest


async def reopen(url: str):
    return await open_store(url, timeout_s=2.0)


async def test_migrations_are_applied_once_and_recorded(store_url):
    store = await reopen(store_url)
    dialect = "postgres" if store.sql.name == "postgres" else "sqlite"
    rows = await store.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, latest(dialect) + 1))
    await store.close()
    again = await reopen(store_url)  # a second start (or a second orchestrator) applies nothing twice
    assert [r[0] for r in await again.fetch("SELECT version FROM schema_migrations")] == [r[0] for r in rows]
    await again.close()


async def test_executions_read_their_own_writes_before_the_commit(store_url):
    store = await reopen(store_url)
    request = msgspec.json.encode({"executionId": "e1", "personaId": "p"})
    assert await store.insert_execution("e1", "p", request, 1, 0, "key_a", "alice") is True
    assert await store.insert_execution("e1", "p", request, 1, 0) is False  # idempotent by id
    store.update_execution("e1", status="running", worker_id="w1")  # queued, not yet committed
    row = await store.get_execution("e1")
    assert row is not None and row["status"] == "running" and row["worker_id"] == "w1"
    assert bytes(row["request"]) == request and row["submitter"] == "alice"
    assert await store.insert_execution("e2", "p", request, 1, 0)
    store.update_execution("e2", status="completed", exit_code=0, duration_ms=1500)
    assert await store.count_by_status() == {"running": 1, "completed": 1}
    assert [r["id"] for r in await store.executions_by_status("completed")] == ["e2"]
    assert {r["id"] for r in await store.recent_executions(None, 10)} == {"e1", "e2"}
    await store.add_action("e1", {"persona": "q", "executionId": "e3"})
    await store.add_action("e1", {"persona": "r", "refused": "depth"})
    row = await store.get_execution("e1")
    assert row is not None and len(msgspec.json.decode(row["actions"])) == 2
    await store.commit()
    await store.close()
    durable = await reopen(store_url)
    row = await durable.get_execution("e2")
    assert row is not None and (row["status"], row["exit_code"], row["duration_ms"]) == ("completed", 0, 1500)
    await durable.close()


async def test_output_rows_are_kept_once_in_seq_order(store_url):
    store = await reopen(store_url)
    store.append_output([("e1", 2, "stdout", "b"), ("e1", 1, "stdout", "a"), ("e1", 3, "stderr", "c")])
    store.append_output([("e1", 2, "stdout", "replayed")])  # a replay after a reconnect changes nothing
    assert await store.last_seq("e1") == 3
    assert await store.read_output("e1") == [(1, "stdout", "a"), (2, "stdout", "b"), (3, "stderr", "c")]
    assert await store.read_output("e1", after_seq=2) == [(3, "stderr", "c")]
    assert await store.last_seq("nothing") == 0
    await store.close()


async def test_output_with_a_nul_is_kept_on_both_dialects(store_url):
    """An agent may print NUL; PostgreSQL's text refuses it, so there it is kept as U+FFFD."""
    store = await reopen(store_url)
    store.append_output([("e1", 1, "stdout", "before\x00after")])
    [(seq, stream, chunk)] = await store.read_output("e1")
    on_postgres = store_url.startswith("postgres")
    assert (seq, stream, chunk) == (1, "stdout", "before\ufffdafter" if on_postgres else "before\x00after")
    await store.close()


async def test_a_retried_claim_takes_its_own_row_and_no_other(store_url):
    """A claim whose answer was lost may have landed: its retry (same token) takes the row again. The
    same request under another claim (re-read after a rebalance or a restart, while the row is
    adopted from a gone peer and so this orchestrator's too) is refused: it would start twice."""

    async def ignore(why: str) -> None:
        return None

    store = await reopen(store_url)
    await Membership(store, "orch-t", None, 30.0, ignore).join()
    claim = (b"{}", "e-claim", "p", 1, 0)
    assert await store.claim_execution(*claim, worker_id="w1", claim="first") == "inserted"
    await store.commit()
    assert await store.claim_execution(*claim, worker_id="w2", claim="second") is None
    assert await store.claim_execution(*claim, worker_id="w2", claim="first") == "updated"
    await store.commit()
    assert (await store.get_execution("e-claim"))["worker_id"] == "w2"
    await store.close()


async def test_held_records_come_back_in_order_and_leave_once_released(store_url):
    store = await reopen(store_url)
    for i in range(5):
        store.hold_record("persona.output.v1", f"k{i}".encode() if i else None, f"v{i}".encode())
    assert await store.held_count() == 5
    held = await store.held_records(3)
    assert [(topic, key, value) for _, topic, key, value in held] == [
        ("persona.output.v1", None, b"v0"),
        ("persona.output.v1", b"k1", b"v1"),
        ("persona.output.v1", b"k2", b"v2"),
    ]
    store.release_records(held[-1][0])
    assert [value for *_, value in await store.held_records(10)] == [b"v3", b"v4"]
    await store.close()


async def test_sealed_values_api_keys_and_worker_tokens(store_url):
    store = await reopen(store_url)
    blob = bytes(range(256))  # any bytes, NUL included
    await store.put_sealed("credential:GITHUB_TOKEN", blob)
    await store.put_sealed("credential:SLACK_TOKEN", b"x")
    await store.put_sealed("claude:oauth-token", b"y")
    assert await store.get_sealed("credential:GITHUB_TOKEN") == blob
    assert [r["name"] for r in await store.list_sealed("credential:")] == ["GITHUB_TOKEN", "SLACK_TOKEN"]
    assert await store.delete_sealed("credential:SLACK_TOKEN") is True
    assert await store.delete_sealed("credential:SLACK_TOKEN") is False
    assert await store.get_sealed("credential:SLACK_TOKEN") is None

    await store.add_api_key("key_a", "alice", "contributor", "hash-a")
    await store.add_api_key("key_a", "alice", "contributor", "hash-a")  # adopting the same key twice
    assert await store.api_key_by_hash("hash-a") == {"id": "key_a", "name": "alice", "role": "contributor"}
    await store.rehash("api_keys", "hash-a", "hash-a2")
    assert await store.api_key_by_hash("hash-a") is None and (await store.api_key_by_hash("hash-a2"))["id"] == "key_a"
    assert [k["id"] for k in await store.list_api_keys()] == ["key_a"]
    assert await store.delete_api_key("key_a") is True and await store.list_api_keys() == []

    await store.add_worker_token("reg", "registration", None, 2, time.time() + 60)
    spent = await asyncio.gather(*(store.use_registration_token("reg") for _ in range(4)))
    assert sorted(spent) == [False, False, True, True]  # two uses, however the calls interleave
    await store.add_worker_token("open", "registration", None, None, None)
    assert await store.use_registration_token("open") is True  # no limit
    await store.replace_worker_credential("w1", "cred-1", "reg")
    await store.replace_worker_credential("w1", "cred-2", "reg")  # one credential per worker id
    assert await store.worker_token("cred-1") is None
    assert (await store.worker_token("cred-2"))["worker_id"] == "w1"
    assert await store.has_worker_credential("w1") and await store.ids_registered_by("reg") == 1
    await store.close()


async def test_usage_sums_the_same_on_both_dialects(store_url):
    """The dialect-specific pieces (JSON numbers, UTC days, conditional counts) give one answer."""
    store = await reopen(store_url)
    day = time.mktime((2026, 11, 3, 12, 0, 0, 0, 0, 0)) - time.timezone
    for i, (status, persona) in enumerate([("completed", "a"), ("failed", "a"), ("completed", "b")]):
        await store.insert_execution(f"e{i}", persona, b"{}", 1, 0, "key_a", "alice")
        usage_json = msgspec.json.encode({"inputTokens": 10 * (i + 1), "outputTokens": 5, "costUsd": 0.0125})
        store.update_execution(f"e{i}", status=status, duration_ms=1000, usage=usage_json.decode(), attempt=i + 1)
    await store.execute("UPDATE executions SET updated_at = ?", day)
    by_persona = await usage(store, day - 1, day + 1, "persona")
    assert by_persona["total"] == {
        "executions": 3,
        "attempts": 6,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "timedOut": 0,
        "durationMs": 3000,
        "inputTokens": 60,
        "outputTokens": 15,
        "cacheReadTokens": 0,
        "cacheCreationTokens": 0,
        "costUsd": 0.0375,
    }
    assert [(g["key"], g["executions"], g["durationMsByPlace"]) for g in by_persona["groups"]] == [
        ("a", 2, {"unknown": 2000}),
        ("b", 1, {"unknown": 1000}),
    ]
    by_day = await usage(store, day - 1, day + 1, "day")
    assert [g["key"] for g in by_day["groups"]] == ["2026-11-03"]
    by_member = await usage(store, day - 1, day + 1, "member")
    assert [(g["key"], g["name"]) for g in by_member["groups"]] == [("key_a", "alice")]
    await store.close()


async def test_a_sqlite_file_from_before_numbered_migrations_is_upgraded_in_place(tmp_path):
    path = tmp_path / "orchestrator.db"
    old = sqlite3.connect(path)  # the first release's executions table, with one row
    old.execute(
        "CREATE TABLE executions (id TEXT PRIMARY KEY, persona_id TEXT NOT NULL, status TEXT NOT NULL,"
        " attempt INTEGER NOT NULL DEFAULT 1, generation INTEGER NOT NULL DEFAULT 0, worker_id TEXT,"
        " request BLOB NOT NULL, exit_code INTEGER, duration_ms INTEGER, usage TEXT, reason TEXT,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO executions (id, persona_id, status, request, created_at, updated_at) VALUES"
                " ('old', 'p', 'completed', x'7b7d', 1, 2)")  # fmt: skip
    old.commit()
    old.close()
    store = await reopen(str(path))
    row = await store.get_execution("old")
    assert row is not None and row["status"] == "completed" and row["submitted_by"] is None
    assert await store.fetchval("SELECT MAX(version) FROM schema_migrations") == latest("sqlite")
    await store.put_sealed("credential:X", b"sealed")  # tables the old file never had now exist
    await store.close()


async def test_postgres_going_away_fails_fast_and_loses_no_queued_write(own_postgres):
    url = own_postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    store = await open_store(url, timeout_s=1.0)
    await store.insert_execution("e1", "p", b"{}", 1, 0)
    own_postgres.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as refused:
        await store.get_execution("e1")
    assert time.monotonic() - started < 3.0  # fails fast, as the API's 503 needs
    assert own_postgres.password not in str(refused.value)  # the URL's password never in an error
    store.update_execution("e1", status="running")  # queued while the server is down
    store.append_output([("e1", 1, "stdout", "kept")])
    own_postgres.start()
    await asyncio.wait_for(store.commit(), 15)  # the writer resends once the server is back
    row = await store.get_execution("e1")
    assert row is not None and row["status"] == "running"
    assert await store.read_output("e1") == [(1, "stdout", "kept")]
    await store.close()


async def test_a_refused_write_does_not_take_the_rest_of_its_batch(postgres_url):
    store = await open_store(postgres_url, timeout_s=2.0)
    await store.insert_execution("e1", "p", b"{}", 1, 0)
    store.update_execution("e1", status="running")
    store.write("INSERT INTO executions (id) VALUES (?)", "bad")  # NOT NULL columns missing: refused
    store.append_output([("e1", 1, "stdout", "after the bad one")])
    await store.commit()
    assert (await store.get_execution("e1"))["status"] == "running"
    assert await store.read_output("e1") == [(1, "stdout", "after the bad one")]
    assert await store.get_execution("bad") is None
    await store.close()


async def test_a_wrong_password_is_a_clear_refusal_without_the_password(postgres_server):
    url = postgres_server.url("postgres").replace(postgres_server.password, "not-the-password")
    with pytest.raises(StoreUnavailable) as refused:
        await open_store(url, timeout_s=2.0)
    assert "refused" in str(refused.value) and "not-the-password" not in str(refused.value)
