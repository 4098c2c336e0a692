"""Agents that start agents: a ``persona_action`` event (``{"persona": ..., "prompt": ...}``) from a
running execution becomes a new execution of that persona, linked to the one that asked
(``parentId``, ``depth``, ``chainId`` on its request, its API view and its lifecycle records).

This lives in the orchestrator, not in a host application: a chain then runs whether or not a host is
listening (a Kafka-only producer, a host that is restarting), and its limits hold in one place for
every client. The limits: ``DAC_CHAIN_MAX_DEPTH`` links from the chain's root (0, the default, turns
chaining off: it is opt-in) and ``DAC_CHAIN_BUDGET`` executions started per chain, so agents cannot
loop forever or fan out without end. Whatever becomes of an action (started, or refused and why) is
noted on the asking execution (``actions`` in its view) and sent on the events topic as a
``persona_action_started`` / ``persona_action_refused`` event (``seq`` 0: the orchestrator's, not
part of the agent's numbered stream). The child runs on behalf of whoever submitted the root.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ...records import EventRecord, ExecRequest, prompt_problem
from ..refusals import Refused

if TYPE_CHECKING:
    from ..config import Settings
    from ..store import Store
    from .bus import Bus
    from .submit import Submitter

log = logging.getLogger("dac.orchestrator.chains")
ACTION = "persona_action"


class Chains:
    def __init__(self, settings: Settings, store: Store, submitter: Submitter, bus: Bus) -> None:
        self._max_depth, self._budget = settings.chain_max_depth, settings.chain_budget
        self._store, self._submitter, self._bus = store, submitter, bus
        self._lock = asyncio.Lock()  # a budget check and the submission it allows, one chain at a time
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._max_depth > 0

    def on_event(self, parent: ExecRequest, event_type: str, payload: dict[str, Any]) -> None:
        if event_type != ACTION or not self.enabled:
            return
        task = asyncio.get_running_loop().create_task(self._act(parent, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, parent: ExecRequest, payload: dict[str, Any]) -> None:
        persona, prompt = payload.get("persona"), payload.get("prompt")
        if not isinstance(persona, str) or not isinstance(prompt, str) or not persona or not prompt:
            return await self._refuse(parent, persona, 'needs {"persona": ..., "prompt": ...}')
        problem = prompt_problem(prompt)
        if problem is not None:
            return await self._refuse(parent, persona, problem)
        depth, chain = parent.depth + 1, parent.chain_id or parent.execution_id
        if depth > self._max_depth:
            why = f"depth limit {self._max_depth} reached (chain {chain}: this execution is at depth {parent.depth})"
            return await self._refuse(parent, persona, why)
        async with self._lock:
            started = await self._store.chain_size(chain)
            if started >= self._budget:
                return await self._refuse(parent, persona, f"chain budget of {self._budget} executions spent")
            child = ExecRequest(
                execution_id=uuid.uuid4().hex,
                persona_id=persona,
                prompt=prompt,
                submitted_at=time.time(),
                parent_id=parent.execution_id,
                depth=depth,
                chain_id=chain,
            )
            row = await self._store.get_execution(chain) or await self._store.get_execution(parent.execution_id) or {}
            submitter = {"id": row.get("submitted_by"), "name": row.get("submitter")}
            try:
                await self._submitter.submit(child, submitter)  # type: ignore[arg-type]
            except Refused as exc:
                return await self._refuse(parent, persona, f"not queued: {exc.message}")
            self._store.update_execution(child.execution_id, chain_id=chain)
        await self._store.add_action(parent.execution_id, {"persona": persona, "executionId": child.execution_id})
        await self._say(parent, "persona_action_started", {"persona": persona, "executionId": child.execution_id})
        log.info("chain %s: %s started %s at depth %d", chain, parent.execution_id, child.execution_id, depth)

    async def _refuse(self, parent: ExecRequest, persona: Any, why: str) -> None:
        shown = persona if isinstance(persona, str) else None
        await self._store.add_action(parent.execution_id, {"persona": shown, "refused": why})
        await self._say(parent, "persona_action_refused", {"persona": shown, "reason": why})
        log.info("chain: a persona_action of %s refused: %s", parent.execution_id, why)

    async def _say(self, parent: ExecRequest, event_type: str, payload: dict[str, Any]) -> None:
        record = EventRecord(
            execution_id=parent.execution_id,
            persona_id=parent.persona_id,
            event_type=event_type,
            payload=payload,
            seq=0,
            timestamp=time.time(),
        )
        await self._bus.event(record)
