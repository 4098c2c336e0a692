"""Keep garbage collection off dispatch's tail latency while thousands of workers are connected.

Every connected worker is a few hundred long-lived objects (socket, protocol, buffers). CPython's full
collection walks all of them, and at 10,000 workers one took 600-900 ms of a stopped event loop. Those
objects live as long as their connection, so walking them finds nothing: they are moved out of the
collector's sight with ``gc.freeze()`` once start-up is done and again each time the pool has grown by
``GROWTH`` workers, checked four times a second. Freezing is cheap (it splices lists), and between two
freezes CPython's full collection walks every object that aged since the last one: freezing after
each second's worth of a registration wave (800 workers) let those collections reach 40-77 ms at
10,000 workers. Young objects are still collected as usual.

The price: a frozen object that later becomes part of a garbage *cycle* is not reclaimed until the
next compaction. So when the pool has shrunk by a quarter since the last freeze (many workers gone)
and stayed quiet for a moment, the frozen set is handed back, collected once, and frozen again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("dac.orchestrator.gc")
QUIET_S = 1.0
GROWTH = 100


async def keep_collections_short(pool_size: Callable[[], int], check_every_s: float = 0.25) -> None:
    gc.collect()
    gc.freeze()
    frozen_at = pool_size()
    last_size, last_change = frozen_at, time.monotonic()
    while True:
        await asyncio.sleep(check_every_s)
        size = pool_size()
        now = time.monotonic()
        if size >= frozen_at + GROWTH:
            # The new connections join the long-lived set now, not once registrations stop: a full
            # collection during a wave of thousands would otherwise walk them all.
            gc.freeze()
            log.info("froze the long-lived objects of %d workers", size)
            frozen_at = size
            continue
        if size != last_size:
            last_size, last_change = size, now
            continue
        if now - last_change < QUIET_S:
            continue
        if size < frozen_at * 3 // 4:
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            log.info(
                "compacted after the pool shrank to %d workers (%.0f ms)", size, 1000 * (time.perf_counter() - started)
            )
            frozen_at = size
