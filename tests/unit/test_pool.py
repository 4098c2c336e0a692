"""The pool answers dispatch's questions from state it keeps, not by scanning the workers."""

from __future__ import annotations

from dac_runtime.orchestrator.dispatch.pool import Pool, WorkerConn


def _conn(worker_id: str, state: str = "connecting") -> WorkerConn:
    conn = WorkerConn(worker_id, "t", ws=None)  # type: ignore[arg-type] - no socket needed here
    conn.state = state  # type: ignore[assignment]
    return conn


def test_the_worker_idle_longest_goes_first_whatever_its_heartbeats():
    pool = Pool()
    a, b, c = (pool.add(x) or x for x in (_conn("a"), _conn("b"), _conn("c")))
    for worker in (b, a, c):  # become idle in this order
        worker.state = "idle"
    a.last_seen += 100  # a heartbeat moves nothing
    assert [pool.take_idle(), pool.take_idle()] == [b, a]
    b.state = "idle"  # b is idle again, now after c
    assert [pool.take_idle(), pool.take_idle(), pool.take_idle()] == [c, b, None]
    assert pool.counts() == {"connecting": 0, "idle": 0, "executing": 3, "draining": 0, "offline": 0}


def test_counts_follow_every_change_add_replace_and_remove():
    pool = Pool()
    first = _conn("w", "idle")
    pool.add(first)
    assert pool.has_idle() and pool.counts()["idle"] == 1
    second = _conn("w")  # the same id reconnects: the old connection leaves the pool
    assert pool.add(second) is first
    first.state = "offline"  # a replaced connection's changes no longer count
    assert pool.counts() == {"connecting": 1, "idle": 0, "executing": 0, "draining": 0, "offline": 0}
    assert not pool.has_idle()
    second.state = "idle"
    second.state = "draining"
    assert not pool.has_idle() and pool.take_idle() is None
    pool.remove(second)
    assert sum(pool.counts().values()) == 0 and pool.workers == {}
