"""The team's tables as every orchestrator holds them: personas, credentials, the Claude token's
times and API keys are read on every dispatch or request, so each orchestrator keeps them in memory.

With several orchestrators, a change made through one must reach the others: each change bumps one
counter row in the store (in the same ordered write queue as the change itself), and every
orchestrator looks at the counter every ``CHECK_S`` and reads the tables again when it moved. So a
persona's ``maxConcurrent``, a revoked credential or API key take effect everywhere within a check.
The counter is read before the tables, so a change that lands during a reload is seen at the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..store import StoreUnavailable

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("dac.orchestrator.team")
#: how often the counter is looked at (a changed persona or a revoked key is this late elsewhere)
CHECK_S = 1.0


class TeamChanges:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.seen: int | None = None  # the counter as of the last read of the tables
        #: reads the tables again (set by the composition root: personas, credentials, vault)
        self.reload: Callable[[], Awaitable[None]] = _nothing

    def changed(self) -> None:
        """The team changed here: tell the other orchestrators (queued after the change's own writes)."""
        self._store.write("UPDATE team_version SET version = version + 1 WHERE id = 1")

    async def read(self) -> int:
        return int(await self._store.fetchval("SELECT version FROM team_version WHERE id = 1") or 0)

    async def load(self) -> None:
        """Read the tables, noting the counter first."""
        self.seen = await self.read()
        await self.reload()

    async def follow_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                if await self.read() != self.seen:
                    await self.load()
                    log.info("the team changed on another orchestrator: personas, credentials and keys read again")
            except StoreUnavailable:
                pass  # looked at again once the store is back


async def _nothing() -> None:
    return None
