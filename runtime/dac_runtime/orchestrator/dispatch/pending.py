"""A request on its way to a worker: where it was read (for its offset), and when."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition

from ...records import ExecRequest


@dataclass(eq=False)
class Pending:
    request: ExecRequest
    tp: TopicPartition | None
    offset: int | None
    produced_at: float
    #: ``time.perf_counter()`` when intake read it (for dac_dispatch_handling_seconds)
    read_at: float = 0.0
    #: taken from a peer's handoff: its reader already counted it against its persona's limit
    handed: bool = False
