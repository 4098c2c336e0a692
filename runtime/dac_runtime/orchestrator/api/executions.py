"""Executions: submit, list, read, cancel, and follow one's output (SSE)."""

from __future__ import annotations

import asyncio
import json
import time
import typing
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from aiohttp import web

from ...protocol import TERMINAL_STATUSES, Id, PositiveInt
from ...records import CredentialName, ExecRequest, Status, prompt_problem
from ..claude_token import TokenExpired
from .common import ORCH_KEY, ApiError, Body, decode_body

if TYPE_CHECKING:
    from ..app import Orchestrator


class ExecuteBody(Body):
    persona_id: Id
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
    execution_id: Id | None = None
    credentials: list[CredentialName] = []
    timeout_ms: PositiveInt | None = None
    max_output_bytes: PositiveInt | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    metadata: dict[str, str] = {}


def _execution_view(row: dict[str, Any]) -> dict[str, Any]:
    request = json.loads(row["request"])
    return {
        "executionId": row["id"],
        "personaId": row["persona_id"],
        "status": row["status"],
        "attempt": row["attempt"],
        "workerId": row["worker_id"],
        "exitCode": row["exit_code"],
        "durationMs": row["duration_ms"],
        "usage": json.loads(row["usage"]) if row["usage"] else None,
        "reason": row["reason"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "metadata": request.get("metadata", {}),
        "submittedBy": {"id": row["submitted_by"], "name": row["submitter"]} if row["submitted_by"] else None,
        "credentials": json.loads(row["given_credentials"]) if row["given_credentials"] else [],
    }


def _row_or_404(orch: Orchestrator, execution_id: str) -> dict[str, Any]:
    row = orch.store.get_execution(execution_id)
    if row is None:
        raise ApiError(404, "not_found", f"no execution {execution_id!r}")
    return row


async def execute(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    body = await decode_body(request, ExecuteBody)
    problem = prompt_problem(body.prompt)
    if problem is not None:
        raise ApiError(400, "invalid_prompt", problem)
    execution_id = body.execution_id or uuid.uuid4().hex
    existing = orch.store.get_execution(execution_id)
    if existing is not None:
        return web.json_response(_execution_view(existing), status=200)
    exec_request = ExecRequest(
        execution_id=execution_id,
        persona_id=body.persona_id,
        prompt=body.prompt,
        credentials=body.credentials,
        timeout_ms=body.timeout_ms,
        max_output_bytes=body.max_output_bytes,
        max_attempts=body.max_attempts,
        metadata=body.metadata,
        submitted_at=time.time(),
    )
    try:
        orch.vault.require_live_claude_token()
    except TokenExpired as exc:
        raise ApiError(409, "claude_token_expired", str(exc)) from None
    retry_after = {"Retry-After": str(max(1, orch.settings.kafka_probe_ms // 1000))}
    down = orch.kafka.why_down()
    if down is not None:
        raise ApiError(503, "kafka_unavailable", f"could not queue the request: {down}", retry_after)
    key = request["api_key"]
    orch.store.insert_execution(
        execution_id, body.persona_id, msgspec.json.encode(exec_request), 1, 0, key["id"], key["name"]
    )
    try:
        await asyncio.wait_for(orch.bus.request(exec_request), timeout=orch.settings.submit_timeout_ms / 1000)
    except Exception as exc:
        # Not known to be stored, so not accepted. The record may still reach the broker later and
        # run: a client that retries with the same executionId is safe either way.
        orch.store.delete_execution(execution_id)
        why = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise ApiError(503, "kafka_unavailable", f"could not queue the request: {why}", retry_after) from None
    await orch.events.lifecycle(exec_request, "queued")
    return web.json_response({"executionId": execution_id, "status": "queued"}, status=202)


async def list_executions(request: web.Request) -> web.Response:
    """Newest first, optionally one status; ``counts`` covers every execution the store holds."""
    orch = request.app[ORCH_KEY]
    status = request.query.get("status")
    statuses = typing.get_args(Status)
    if status is not None and status not in statuses:
        raise ApiError(400, "bad_request", f"status must be one of {', '.join(statuses)}")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
    rows = orch.store.recent_executions(status, limit)
    body = {"executions": [_execution_view(r) for r in rows], "counts": orch.store.count_by_status()}
    return web.json_response(body)


async def get_execution(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    return web.json_response(_execution_view(_row_or_404(orch, request.match_info["id"])))


async def cancel_execution(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    execution_id = request.match_info["id"]
    row = _row_or_404(orch, execution_id)
    if row["status"] in TERMINAL_STATUSES:
        raise ApiError(409, "already_finished", f"execution {execution_id} already ended: {row['status']}")
    await orch.dispatcher.cancel(execution_id)
    return web.json_response({"executionId": execution_id, "status": "cancelling"}, status=202)


async def stream_execution(request: web.Request) -> web.StreamResponse:
    """SSE: replay what was said so far, then follow live until the execution ends."""
    orch = request.app[ORCH_KEY]
    execution_id = request.match_info["id"]
    row = _row_or_404(orch, execution_id)
    queue = orch.events.subscribe(execution_id)
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        orch.events.flush()
        last = 0
        for seq, kind, body in orch.store.read_output(execution_id):
            await response.write(f"event: {kind}\ndata: {body}\n\n".encode())  # stored as the SSE payload
            last = seq
        row = orch.store.get_execution(execution_id) or row
        status_item = {"kind": "lifecycle", "executionId": execution_id, "status": row["status"], "replay": True}
        if row["status"] in TERMINAL_STATUSES:
            status_item.update(exitCode=row["exit_code"], reason=row["reason"])
            await response.write(_sse(status_item))
            return response
        await response.write(_sse(status_item))
        while True:
            item = await queue.get()
            if item is None:
                break
            if item["kind"] != "lifecycle" and item["seq"] <= last:
                continue
            await response.write(_sse(item))
        return response
    finally:
        orch.events.unsubscribe(execution_id, queue)


def _sse(item: dict[str, Any]) -> bytes:
    return f"event: {item['kind']}\ndata: {json.dumps(item, separators=(',', ':'))}\n\n".encode()
