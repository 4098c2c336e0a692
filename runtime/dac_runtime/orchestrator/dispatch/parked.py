"""Requests held back for their persona's ``maxConcurrent``: by persona, oldest first.

A parked request keeps its offset uncommitted, so a crash re-delivers it; one of its persona's runs
ending (here, or on a peer: :mod:`.limits` looks) hands the oldest back to intake for dispatch.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from aiokafka import TopicPartition

from .pending import Pending


class Parked:
    def __init__(self, hand_back: Callable[[Pending], None]) -> None:
        self._hand_back = hand_back  # to the front of intake's queue
        self._by_persona: dict[str, collections.deque[Pending]] = {}
        self.count = 0
        #: set whenever one leaves (intake waits on it while the parked set is full)
        self.left = asyncio.Event()

    def __bool__(self) -> bool:
        return self.count > 0

    def park(self, pending: Pending) -> None:
        self._by_persona.setdefault(pending.request.persona_id, collections.deque()).append(pending)
        self.count += 1

    def unpark(self, persona_id: str) -> None:
        """A run of ``persona_id`` ended: its oldest waiting request goes next, once the current step
        is through (so the ended run's terminal record goes out first)."""
        if persona_id in self._by_persona:
            asyncio.get_running_loop().call_soon(self._release, persona_id)

    def _release(self, persona_id: str) -> None:
        waiting = self._by_persona.get(persona_id)
        if not waiting:
            return
        self._hand_back(waiting.popleft())
        self.count -= 1
        if not waiting:
            del self._by_persona[persona_id]
        self.left.set()

    def by_persona(self) -> dict[str, int]:
        return {persona_id: len(waiting) for persona_id, waiting in self._by_persona.items()}

    def let_go(self, partitions: set[TopicPartition]) -> int:
        """Drop the requests read from ``partitions`` (a rebalance moved them); how many."""
        dropped = 0
        for persona_id in list(self._by_persona):
            waiting = self._by_persona[persona_id]
            staying = [p for p in waiting if p.tp is None or p.tp not in partitions]
            dropped += len(waiting) - len(staying)
            if staying:
                self._by_persona[persona_id] = collections.deque(staying)
            else:
                del self._by_persona[persona_id]
        self.count -= dropped
        return dropped
