"""Long-lived objects are frozen as they age, the young generation never holds more than a moment's
survivors, and the frozen set is handed back for one collection when many workers have gone or
connections churned."""

from __future__ import annotations

import asyncio
import gc

from dac_runtime.orchestrator.ops import gc_tuning


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector reclaims it


async def test_survivors_are_frozen_and_compacted_after_a_shrink(monkeypatch):
    monkeypatch.setattr(gc_tuning, "QUIET_S", 0.05)
    size = [0]
    task = asyncio.create_task(gc_tuning.keep_collections_short(lambda: size[0], lambda: 0, check_every_s=0.02))
    try:
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 0  # start-up's objects
        held = [Node() for _ in range(5000)]  # a wave of new long-lived objects
        size[0] = 200
        before = gc.get_freeze_count()
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() >= before + 5000
        assert len(gc.get_objects(0)) + len(gc.get_objects(1)) < 5000  # not left for the young collections
        del held  # cycles among frozen objects: unreclaimed until a compaction
        assert gc.get_freeze_count() >= before + 5000
        size[0] = 10  # most workers left: the frozen set is collected once and frozen again
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() < before + 1000
    finally:
        task.cancel()
        gc.unfreeze()


async def test_churn_without_growth_is_compacted(monkeypatch):
    """A pool that keeps its size while its connections are replaced one by one."""
    monkeypatch.setattr(gc_tuning, "QUIET_S", 0.05)
    departed = [0]
    task = asyncio.create_task(gc_tuning.keep_collections_short(lambda: 150, lambda: departed[0], check_every_s=0.02))
    try:
        await asyncio.sleep(0.1)
        churned = [Node() for _ in range(20_000)]  # connections' objects, frozen as they aged...
        await asyncio.sleep(0.05)
        start = gc.get_freeze_count()
        del churned  # ...then closed: cyclic garbage in the frozen set
        departed[0] = 149
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() > start - 1000  # fewer departures than the pool holds: left alone
        departed[0] = 150
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() < start - 15_000
    finally:
        task.cancel()
        gc.unfreeze()
