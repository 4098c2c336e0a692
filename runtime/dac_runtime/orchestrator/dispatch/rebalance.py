"""A rebalance of the exec topic's consumer group, as intake sees it: partitions it gives up.

aiokafka awaits the listener before the group rejoins, and every member's revocation runs before any
member's assignment, so what intake lets go here is read again by the new owner, never by two at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition


class HandOn(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, revoked: Callable[[set[TopicPartition]], Awaitable[None]]) -> None:
        self._revoked = revoked
        #: the group gave this member its share at least once (none, when there are more
        #: orchestrators than partitions: it still serves the API and its workers)
        self.joined = False

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined = True
