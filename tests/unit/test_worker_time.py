"""Worker time across an orchestrator crash: a connection still open when the process died is closed
at the last checkpoint that saw it, not at its start (which dropped all of its time) nor at the
restart (which would bill the time the orchestrator was down)."""

from __future__ import annotations

import sqlite3
import time

from dac_runtime.orchestrator.ops.capacity import Capacity
from dac_runtime.orchestrator.store import SQLiteStore, Store


class NoPool:
    workers: dict = {}

    def counts(self) -> dict[str, int]:
        return {}


async def capacity(store: Store, gone: int | None = None) -> Capacity:
    """The capacity of an orchestrator that took over from ``gone`` (an epoch; None: from before epochs)."""
    made = Capacity(store, NoPool(), lambda: 0, lambda: 0.0, lambda: {})  # type: ignore[arg-type]
    await made.closed_by(gone)
    return made


async def test_a_crash_keeps_worker_time_up_to_the_last_checkpoint(tmp_path):
    path = tmp_path / "orchestrator.db"
    first = SQLiteStore(path)
    first.fence = 7  # the orchestrator that crashes, as epoch 7
    before = await capacity(first)
    start = time.time() - 100
    await first.execute(  # a connection opened 100 s ago, seen 40 s ago, then the process died
        "INSERT INTO worker_time (worker_id, place, opened_at, epoch) VALUES ('w1', 'do', ?, 7)", start
    )
    await first.execute(  # a peer's connection (epoch 8), still open: not the crashed one's to close
        "INSERT INTO worker_time (worker_id, place, opened_at, epoch) VALUES ('w2', 'fly', ?, 8)", start
    )
    before.checkpoint(start + 60)
    await first.commit()
    first.db.close()

    after = await capacity(SQLiteStore(path), gone=7)  # the survivor closes what the crash left open
    used = await after.worker_seconds(start - 1, time.time())
    assert used["do"]["workers"] == 1 and abs(used["do"]["seconds"] - 60) < 0.01
    assert used["fly"]["seconds"] >= 99  # the live peer's connection goes on counting
    assert set(await after.worker_seconds(start + 61, time.time())) == {"fly"}  # nothing of w1 after its last sighting


async def test_a_record_from_before_checkpoints_is_upgraded_in_place(tmp_path):
    path = tmp_path / "orchestrator.db"
    old = sqlite3.connect(path)  # a database as an orchestrator before checkpoints (and migrations) left it
    old.execute(
        "CREATE TABLE executions (id TEXT PRIMARY KEY, persona_id TEXT NOT NULL, status TEXT NOT NULL,"
        " request BLOB NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    old.execute(
        "CREATE TABLE worker_time (id INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL,"
        " place TEXT NOT NULL, opened_at REAL NOT NULL, closed_at REAL)"
    )
    old.execute("INSERT INTO worker_time (worker_id, place, opened_at, closed_at) VALUES ('w', 'do', 10, 70)")
    old.commit()
    old.close()
    upgraded = await capacity(SQLiteStore(path))
    assert await upgraded.worker_seconds(0, 100) == {"do": {"seconds": 60.0, "workers": 1}}
    upgraded.checkpoint()  # the new column is there
