"""Long-lived objects are frozen after start-up and after each wave of registrations, and handed back
for one collection when many workers have gone."""

from __future__ import annotations

import asyncio
import gc

from dac_runtime.orchestrator import gc_tuning


async def test_freezes_after_a_quiet_growth_and_compacts_after_a_shrink(monkeypatch):
    monkeypatch.setattr(gc_tuning, "QUIET_S", 0.05)
    size = [0]
    task = asyncio.create_task(gc_tuning.keep_collections_short(lambda: size[0], check_every_s=0.02))
    try:
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 0  # start-up's objects
        held = [[object()] for _ in range(5000)]  # a wave of new long-lived objects
        size[0] = 200
        before = gc.get_freeze_count()
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() >= before + 5000
        del held
        size[0] = 10  # most workers left: the frozen set is collected once and frozen again
        await asyncio.sleep(0.3)
        assert gc.get_freeze_count() < before + 5000
    finally:
        task.cancel()
        gc.unfreeze()
