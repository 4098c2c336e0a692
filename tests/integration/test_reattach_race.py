"""A worker re-attaching a run while the orchestrator adopts its gone peer's runs: one table entry.

Both paths rebuild the execution from its stored row, and both wait on the store while they do. The
race is forced here at that wait (both are inside it before either goes on), in both orders of
release: whichever lands second must join the first. Before this was so, the adoption's copy could
replace the worker's, the worker's frames were dropped and the run failed ``worker_lost`` although
the worker completed it (seen once in CI, in tests/ha's "kill every orchestrator, restart one").
"""

from __future__ import annotations

import asyncio
import types

import msgspec
import pytest

from dac_runtime.orchestrator.cluster.membership import Membership
from dac_runtime.orchestrator.dispatch.leases import ActiveRuns, Leases
from dac_runtime.orchestrator.store import open_store

pytestmark = pytest.mark.integration


class Conn:
    """The pieces of a worker connection that re-attaching touches."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id, self.state, self.execution_id = worker_id, "idle", None
        self.released: set[str] = set()
        self.sent: list[object] = []

    async def send(self, frame: object) -> None:
        self.sent.append(frame)


class Table(Leases):
    def __init__(self, store) -> None:
        self.store = store
        self.events = types.SimpleNamespace(flush=lambda: None, acting=lambda: True)
        self.settings = types.SimpleNamespace(lease_ms=60_000)
        self.active = ActiveRuns()
        self.unconfirmed = {}


@pytest.mark.parametrize("second", ["adoption", "worker"])
async def test_reattach_and_adoption_at_once_leave_the_worker_attached(store_url, second):
    store = await open_store(store_url)
    request = msgspec.json.encode({"executionId": "e1", "personaId": "p", "prompt": "x"})
    assert await store.insert_execution("e1", "p", request, 1, 0)
    store.update_execution("e1", status="running", worker_id="w1", owner=7)  # its orchestrator, now gone
    await store.commit()

    async def lost(why: str) -> None:
        raise AssertionError(why)

    await Membership(store, "survivor", None, 60.0, lost).join()  # writes are fenced from here on
    table, worker = Table(store), Conn("w1")

    arrived: list[asyncio.Future[None]] = []
    one_in, both_in = asyncio.Event(), asyncio.Event()
    real_last_seq = store.last_seq

    async def last_seq(execution_id: str) -> int:
        gate = asyncio.get_running_loop().create_future()
        arrived.append(gate)
        (one_in if len(arrived) == 1 else both_in).set()
        await gate
        return await real_last_seq(execution_id)

    store.last_seq = last_seq
    # the adoption takes the row first (so the worker's path finds it ours already), then the worker
    # re-attaches while the adoption is still rebuilding it
    adopt = asyncio.ensure_future(table.adopt_orphans(7))
    await asyncio.wait_for(one_in.wait(), 5)
    reattach = asyncio.ensure_future(table.reattach(worker, "e1"))
    await asyncio.wait_for(both_in.wait(), 5)
    first, last = (arrived[1], arrived[0]) if second == "adoption" else (arrived[0], arrived[1])
    first.set_result(None)
    for _ in range(50):  # the released one finishes rebuilding (a few loop turns, no store wait left)
        await asyncio.sleep(0)
    last.set_result(None)
    await asyncio.wait_for(asyncio.gather(reattach, adopt), 5)

    active = table.active["e1"]
    assert active.worker is worker, "the table's copy lost its worker: its lease would fail it worker_lost"
    assert active.timer is None or active.timer.cancelled()
    assert len(table.active) == 1 and table.active.by_persona["p"] == 1
    assert worker.execution_id == "e1" and worker.state == "executing"
    await store.close()
