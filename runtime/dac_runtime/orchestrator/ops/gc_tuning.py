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
long as a full collection of the live heap). That happens when the pool has shrunk by a quarter, or
when as many connections have closed as the pool held at the last compaction (churn), and in both
cases only once the pool has been quiet for a moment. (Not measured with ``gc.get_freeze_count()``:
it walks the frozen list, 70 ms at 10,000 workers.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("dac.orchestrator.gc")
QUIET_S = 1.0
#: Fewer departures than this are never worth a compaction.
MIN_CHURN = 100


async def keep_collections_short(
    pool_size: Callable[[], int], departed: Callable[[], int], check_every_s: float = 0.25
) -> None:
    """``pool_size``: connected workers now; ``departed``: connections closed so far."""
    gc.collect()
    gc.freeze()
    base_size, base_departed = pool_size(), departed()
    last_size, last_change = base_size, time.monotonic()
    while True:
        await asyncio.sleep(check_every_s)
        gc.collect(0)
        gc.freeze()
        size, now = pool_size(), time.monotonic()
        if size != last_size:
            last_size, last_change = size, now
            base_size = max(base_size, size)
            continue
        if now - last_change < QUIET_S:
            continue
        shrunk = size < base_size * 3 // 4
        churned = departed() - base_departed >= max(MIN_CHURN, base_size)
        if shrunk or churned:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            base_size, base_departed = size, departed()
            log.info(
                "compacted (%s) at %d workers (%.0f ms)",
                "the pool shrank" if shrunk else "connections churned",
                size,
                1000 * (time.perf_counter() - started),
            )
