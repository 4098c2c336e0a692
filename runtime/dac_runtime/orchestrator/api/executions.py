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
from ...records import CredentialName, ExecRequest, Status
from ..refusals import Refused
from .common import ORCH_KEY, ApiError, Body, decode_body, query_choice, query_limit

if TYPE_CHECKING:
    from ..core import Orchestrator


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
        "retryOf": row["retry_of"],
        "parentId": request.get("parentId"),
        "depth": request.get("depth", 0),
        "chainId": request.get("chainId"),
        "actions": json.loads(row["actions"]) if row["actions"] else [],
    }


async def _row_or_404(orch: Orchestrator, execution_id: str) -> dict[str, Any]:
    row = await orch.store.get_execution(execution_id)
    if row is None:
        raise ApiError(404, "not_found", f"no execution {execution_id!r}")
    return row


async def execute(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    body = await decode_body(request, ExecuteBody)
    execution_id = body.execution_id or uuid.uuid4().hex
    existing = await orch.store.get_execution(execution_id)
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
        await orch.submitter.submit(exec_request, request["api_key"])
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.headers) from None
    return web.json_response({"executionId": execution_id, "status": "queued"}, status=202)


async def list_executions(request: web.Request) -> web.Response:
    """Newest first, optionally one status; ``counts`` covers every execution the store holds."""
    orch = request.app[ORCH_KEY]
    status = query_choice(request, "status", typing.get_args(Status))
    limit = query_limit(request, 50)
    rows = await orch.store.recent_executions(status, limit)
    body = {"executions": [_execution_view(r) for r in rows], "counts": await orch.store.count_by_status()}
    return web.json_response(body)


async def get_execution(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    return web.json_response(_execution_view(await _row_or_404(orch, request.match_info["id"])))


async def cancel_execution(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    execution_id = request.match_info["id"]
    row = await _row_or_404(orch, execution_id)
    if row["status"] in TERMINAL_STATUSES:
        raise ApiError(409, "already_finished", f"execution {execution_id} already ended: {row['status']}")
    await orch.dispatcher.cancel(execution_id)
    return web.json_response({"executionId": execution_id, "status": "cancelling"}, status=202)


async def stream_execution(request: web.Request) -> web.StreamResponse:
    """SSE: replay what was said so far, then follow live until the execution ends."""
    orch = request.app[ORCH_KEY]
    execution_id = request.match_info["id"]
    row = await _row_or_404(orch, execution_id)
    queue = orch.events.subscribe(execution_id)
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        orch.events.flush()
        last = 0
        for seq, kind, body in await orch.store.read_output(execution_id):
            await response.write(f"event: {kind}\ndata: {body}\n\n".encode())  # stored as the SSE payload
            last = seq
        row = await orch.store.get_execution(execution_id) or row
        status_item = {"kind": "lifecycle", "executionId": execution_id, "status": row["status"], "replay": True}
        if row["status"] in TERMINAL_STATUSES:
            status_item.update(exitCode=row["exit_code"], reason=row["reason"])
            await response.write(_sse(status_item))
            return response
        await response.write(_sse(status_item))
        status = row["status"]
        while True:
            # Live from this orchestrator's own runs; from the store for a run another one owns
            # (its rows land every flush), and now and then for one that moved away from here.
            local = execution_id in orch.dispatcher.active
            try:
                item = await asyncio.wait_for(queue.get(), LOCAL_CHECK_S if local else FOLLOW_S)
            except TimeoutError:
                for seq, kind, body in await orch.store.read_output(execution_id, last):
                    await response.write(f"event: {kind}\ndata: {body}\n\n".encode())
                    last = seq
                row = await orch.store.get_execution(execution_id) or row
                if row["status"] != status:
                    status = row["status"]
                    item = {"kind": "lifecycle", "executionId": execution_id, "status": status}
                    if status in TERMINAL_STATUSES:
                        item.update(exitCode=row["exit_code"], reason=row["reason"])
                    await response.write(_sse(item))
                    if status in TERMINAL_STATUSES:
                        break
                continue
            if item is None:
                break
            if item["kind"] == "lifecycle":
                status = item["status"]
            elif item["seq"] <= last:
                continue
            else:
                last = item["seq"]
            await response.write(_sse(item))
        return response
    finally:
        orch.events.unsubscribe(execution_id, queue)


#: how often a stream follows the store for a run another orchestrator owns, and checks one of its own
FOLLOW_S = 0.25
LOCAL_CHECK_S = 2.0


def _sse(item: dict[str, Any]) -> bytes:
    return f"event: {item['kind']}\ndata: {json.dumps(item, separators=(',', ':'))}\n\n".encode()
