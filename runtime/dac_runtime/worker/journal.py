"""What a worker has said about its executions that the orchestrator has not yet acknowledged.

A frame sent on a socket is not a frame recorded: the orchestrator may die before it writes it down,
or the socket may drop with the frame still in a kernel buffer. So every output, event and completion
frame stays here until a ``received`` frame covers it. After a reconnect the worker re-announces each
execution it still holds (running, or finished with its result unacknowledged) in ``hello`` and sends
these frames again, in order; the orchestrator drops the ones it already has by ``seq``.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

from ..protocol import Resume


@dataclass
class _Entry:
    #: (seq, encoded frame); a completion has seq ``None`` and is dropped only by a final ack.
    frames: collections.deque[tuple[int | None, str]] = field(default_factory=collections.deque)
    last_seq: int = 0
    finished: bool = False


class Journal:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._empty = asyncio.Event()
        self._empty.set()

    def record(self, execution_id: str, seq: int | None, encoded: str) -> None:
        entry = self._entries.setdefault(execution_id, _Entry())
        self._empty.clear()
        entry.frames.append((seq, encoded))
        if seq is None:
            entry.finished = True
        else:
            entry.last_seq = max(entry.last_seq, seq)

    def acknowledge(self, execution_id: str, seq: int, final: bool) -> None:
        entry = self._entries.get(execution_id)
        if entry is None:
            return
        if final:
            del self._entries[execution_id]
            if not self._entries:
                self._empty.set()
            return
        while entry.frames and entry.frames[0][0] is not None and entry.frames[0][0] <= seq:
            entry.frames.popleft()

    def resumes(self, running: str | None) -> list[Resume]:
        """Every execution to re-announce: the finished ones in the order they ran, then the running one."""
        held = [
            Resume(execution_id=execution_id, last_seq=entry.last_seq, finished=entry.finished)
            for execution_id, entry in self._entries.items()
            if execution_id != running
        ]
        if running is not None:
            entry = self._entries.get(running)
            held.append(Resume(execution_id=running, last_seq=entry.last_seq if entry else 0))
        return held

    def replay(self) -> list[str]:
        return [encoded for entry in self._entries.values() for _, encoded in entry.frames]

    async def drained(self) -> None:
        """Returns once the orchestrator has acknowledged everything recorded here."""
        await self._empty.wait()

    def __len__(self) -> int:
        return len(self._entries)
