"""A persona's ``maxConcurrent``, held over the whole deployment.

One orchestrator reads all of a persona's requests (they are keyed by persona, so they share a
partition), and it alone decides whether the next may start: on its own worker, or handed off to a
peer's idle one. With several orchestrators its own runs are not all there is, so it counts what the
store says is under way for the persona (dispatched or running anywhere, or handed off and not yet
taken), plus the claims it has in flight. A peer that takes a handed-off request does not count
again: the reader counted it when it handed it off. Ends on a peer do not reach the reader's
``unpark``, so while requests are parked the reader looks at the store again every ``RECHECK_S``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..store import StoreUnavailable
from .pending import Pending

if TYPE_CHECKING:
    from ..store import Store
    from ..team.personas import Persona, Personas

#: how often parked requests are looked at again for runs that ended on a peer
RECHECK_S = 0.5


class Concurrency:
    def __init__(
        self,
        store: Store,
        personas: Personas,
        here: collections.Counter[str],
        claiming: collections.Counter[str],
        parked: Callable[[], dict[str, int]],
        unpark: Callable[[str], None],
    ) -> None:
        self._store, self._personas = store, personas
        self._here, self._claiming = here, claiming  # runs under way here; claims in flight (this one's included)
        self._parked, self._unpark = parked, unpark

    async def full(self, pending: Pending, persona: Persona | None) -> bool:
        """Whether ``pending``, already counted among the claims in flight, would exceed its persona's
        limit: it is parked instead."""
        limit = persona.max_concurrent if persona else None
        if not limit or pending.handed:
            return False
        persona_id = pending.request.persona_id
        if self._here[persona_id] + self._claiming[persona_id] > limit:
            return True  # full on this orchestrator alone: no need to ask the store
        if not self._store.shared:
            return False
        return await self._store.under_way(persona_id) + self._claiming[persona_id] > limit

    async def recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                await self.recheck()
            except StoreUnavailable:
                pass  # looked at again once the store is back

    async def recheck(self) -> None:
        """Hand parked requests back for as many runs of their persona as ended elsewhere."""
        for persona_id, waiting in self._parked().items():
            persona = self._personas.get(persona_id)
            limit = persona.max_concurrent if persona else None
            if not limit:  # the limit was lifted: they all go
                free = waiting
            else:
                free = limit - await self._store.under_way(persona_id) - self._claiming[persona_id]
            for _ in range(min(waiting, free)):
                self._unpark(persona_id)
