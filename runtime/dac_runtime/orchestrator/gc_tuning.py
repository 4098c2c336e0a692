"""Keep garbage collection off dispatch's tail latency while thousands of workers are connected.

Every connected worker is a few hundred long-lived objects (socket, protocol, buffers), and CPython
walks every object it tracks in a full collection: at 10,000 workers one took 600-900 ms of a stopped
event loop. Those objects live as long as their connection, so walking them finds nothing: they are
moved out of the collector's sight with ``gc.freeze()``.

The young generation needs the same care. Each worker's read loop re-creates its pending ``receive``
(coroutines, a future, a message: six objects) at every frame, and a collection is triggered by
allocations *minus* deallocations, which this churn leaves near zero. So the young generation filled
with the waits of every worker heard from since the last collection (60,000-93,000 objects at 10,000
workers) and a young collection took 40-70 ms. Four times a second the young generation is collected
(what is in it is recent: a few milliseconds' walk) and what survived is frozen, so no collection ever
walks more than a quarter second's survivors. Only objects just found reachable are frozen.

The price: a frozen object that later becomes garbage in a reference *cycle* (a closed connection's
objects) is not reclaimed until the frozen set is handed back and collected once (a compaction, as
long as a full collection of the live heap). That happens when the pool has shrunk by a quarter and
stayed quiet for a moment, or when the frozen set has doubled since the last compaction without the
pool having grown to explain it (connections churned).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("dac.orchestrator.gc")
QUIET_S = 1.0
#: Below this many frozen objects a doubling is not worth a compaction.
MIN_COMPACT_OBJECTS = 200_000


async def keep_collections_short(pool_size: Callable[[], int], check_every_s: float = 0.25) -> None:
    gc.collect()
    gc.freeze()
    base_size, base_frozen = pool_size(), gc.get_freeze_count()
    last_size, last_change = base_size, time.monotonic()
    while True:
        await asyncio.sleep(check_every_s)
        gc.collect(0)
        gc.freeze()
        size, now = pool_size(), time.monotonic()
        if size != last_size:
            last_size, last_change = size, now
            if size > base_size:  # growth explains the frozen set's growth
                base_size, base_frozen = size, gc.get_freeze_count()
            continue
        if now - last_change < QUIET_S:
            continue
        frozen = gc.get_freeze_count()
        shrunk = size < base_size * 3 // 4
        churned = frozen > max(MIN_COMPACT_OBJECTS, 2 * base_frozen)
        if shrunk or churned:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            base_size, base_frozen = size, gc.get_freeze_count()
            log.info(
                "compacted (%s) at %d workers: %d frozen objects -> %d (%.0f ms)",
                "pool shrank" if shrunk else "connections churned",
                size,
                frozen,
                base_frozen,
                1000 * (time.perf_counter() - started),
            )
