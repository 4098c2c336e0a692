"""Accepting an execution from the API: checked, recorded as queued, and stored by the broker before
anyone is told it was accepted. One path for ``POST /api/execute`` and for a dead letter's retry.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from ...records import ExecRequest, prompt_problem
from ..refusals import Refused
from ..team.claude_token import TokenExpired

if TYPE_CHECKING:
    from ..config import Settings
    from ..ops.kafka_health import KafkaHealth
    from ..store import Store
    from ..team.vault import Vault
    from .bus import Bus
    from .events import Events


class Submitter:
    def __init__(
        self, settings: Settings, store: Store, vault: Vault, kafka: KafkaHealth, bus: Bus, events: Events
    ) -> None:
        self._settings, self._store, self._vault = settings, store, vault
        self._kafka, self._bus, self._events = kafka, bus, events

    async def submit(self, request: ExecRequest, submitter: dict[str, str], retry_of: str | None = None) -> None:
        """Queue ``request`` on behalf of ``submitter`` (an API key row); raise :class:`Refused`."""
        problem = prompt_problem(request.prompt)
        if problem is not None:
            raise Refused(400, "invalid_prompt", problem)
        try:
            self._vault.require_live_claude_token()
        except TokenExpired as exc:
            raise Refused(409, "claude_token_expired", str(exc)) from None
        retry_after = {"Retry-After": str(max(1, self._settings.kafka_probe_ms // 1000))}
        down = self._kafka.why_down()
        if down is not None:
            raise Refused(503, "kafka_unavailable", f"could not queue the request: {down}", retry_after)
        await self._store.insert_execution(
            request.execution_id,
            request.persona_id,
            msgspec.json.encode(request),
            1,
            0,
            submitter["id"],
            submitter["name"],
        )
        if retry_of:
            self._store.update_execution(request.execution_id, retry_of=retry_of)
        try:
            await asyncio.wait_for(self._bus.request(request), timeout=self._settings.submit_timeout_ms / 1000)
        except Exception as exc:
            # Not known to be stored, so not accepted. The record may still reach the broker later and
            # run: a client that retries with the same executionId is safe either way.
            self._store.delete_execution(request.execution_id)
            why = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise Refused(503, "kafka_unavailable", f"could not queue the request: {why}", retry_after) from None
        await self._events.lifecycle(request, "queued")
