"""The orchestrator's HTTP API (documented in ``openapi.json``, served at ``/openapi.json``).

Every error is JSON ``{"error": code, "message": text}`` with the right status; bodies are decoded
into strict structs (unknown fields refused, so a typo is reported rather than silently ignored).
Secret values are accepted here and never returned: reads show names and timestamps only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import typing
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from ..crypto import new_token
from ..protocol import TERMINAL_STATUSES, Id, PositiveInt
from ..records import CredentialName, ExecRequest, Status, prompt_problem
from .vault import ROLES

if TYPE_CHECKING:
    from .app import Orchestrator

T = TypeVar("T")
ORCH_KEY: web.AppKey[Orchestrator] = web.AppKey("orchestrator")
PUBLIC = {"/healthz", "/metrics", "/openapi.json", "/ws/worker"}
BUNDLE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.whl")
OWNER_ONLY = ("/api/token", "/api/credentials", "/api/team", "/api/worker-tokens")


class _Body(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    pass


class ExecuteBody(_Body):
    persona_id: Id
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
    execution_id: Id | None = None
    credentials: list[CredentialName] = []
    timeout_ms: PositiveInt | None = None
    max_output_bytes: PositiveInt | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    metadata: dict[str, str] = {}


class SecretBody(_Body):
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=65_536)]


class TokenBody(_Body):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class WorkerTokenBody(_Body):
    uses: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)] = 24 * 3600


class MemberBody(_Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    role: str = "member"


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def bearer_token(request: web.Request) -> str:
    """The credential of an ``Authorization: Bearer ...`` header; the scheme is case-insensitive (RFC 9110)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def decode_body(request: web.Request, kind: type[T], empty_ok: bool = False) -> T:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _ApiError(
            413, "body_too_large", f"request body exceeds {request.app[ORCH_KEY].settings.max_body_bytes} bytes"
        ) from None
    if not raw:
        if empty_ok:
            return kind()
        raise _ApiError(400, "empty_body", "a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise _ApiError(400, "invalid_body", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _ApiError(400, "malformed_json", str(exc)) from None
    except UnicodeDecodeError as exc:
        raise _ApiError(400, "invalid_utf8", f"body is not valid UTF-8 at byte {exc.start}") from None


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@web.middleware
async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    orch = request.app[ORCH_KEY]
    try:
        if request.path not in PUBLIC and not request.path.startswith("/bundle/"):
            token = bearer_token(request)
            key = orch.vault.authenticate(token) if token else None
            if key is None:
                orch.metrics.auth_failures.labels("api").inc()
                raise _ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer dac_...)")
            if request.path.startswith(OWNER_ONLY) and key["role"] != "owner":
                raise _ApiError(403, "forbidden", "this endpoint needs an owner API key")
            request["api_key"] = key
        return await handler(request)
    except _ApiError as exc:
        orch.metrics.http_errors.labels(str(exc.status)).inc()
        return error(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status >= 400:
            orch.metrics.http_errors.labels(str(exc.status)).inc()
            code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
            kept = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
            return error(exc.status, code, exc.reason, kept)
        raise


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
    }


def _row_or_404(orch: Orchestrator, execution_id: str) -> dict[str, Any]:
    row = orch.store.get_execution(execution_id)
    if row is None:
        raise _ApiError(404, "not_found", f"no execution {execution_id!r}")
    return row


async def execute(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    body = await decode_body(request, ExecuteBody)
    problem = prompt_problem(body.prompt)
    if problem is not None:
        raise _ApiError(400, "invalid_prompt", problem)
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
    retry_after = {"Retry-After": str(max(1, orch.settings.kafka_probe_ms // 1000))}
    down = orch.kafka.why_down()
    if down is not None:
        raise _ApiError(503, "kafka_unavailable", f"could not queue the request: {down}", retry_after)
    orch.store.insert_execution(execution_id, body.persona_id, msgspec.json.encode(exec_request), 1, 0)
    try:
        await asyncio.wait_for(orch.bus.request(exec_request), timeout=orch.settings.submit_timeout_ms / 1000)
    except Exception as exc:
        # Not known to be stored, so not accepted. The record may still reach the broker later and
        # run: a client that retries with the same executionId is safe either way.
        orch.store.delete_execution(execution_id)
        why = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise _ApiError(503, "kafka_unavailable", f"could not queue the request: {why}", retry_after) from None
    await orch.events.lifecycle(exec_request, "queued")
    return web.json_response({"executionId": execution_id, "status": "queued"}, status=202)


async def list_executions(request: web.Request) -> web.Response:
    """Newest first, optionally one status; ``counts`` covers every execution the store holds."""
    orch = request.app[ORCH_KEY]
    status = request.query.get("status")
    statuses = typing.get_args(Status)
    if status is not None and status not in statuses:
        raise _ApiError(400, "bad_request", f"status must be one of {', '.join(statuses)}")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise _ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
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
        raise _ApiError(409, "already_finished", f"execution {execution_id} already ended: {row['status']}")
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


async def list_workers(request: web.Request) -> web.Response:
    orch = request.app[ORCH_KEY]
    return web.json_response({"workers": [w.describe() for w in orch.registry.workers.values()]})


async def healthz(request: web.Request) -> web.Response:
    """200 only when every component works; otherwise 503 with ``down`` naming each one and why."""
    orch = request.app[ORCH_KEY]
    down = dict(orch.supervisor.down)
    consumer = orch.intake.consumer
    if "intake" not in down and (consumer is None or not consumer.assignment()):
        down["intake"] = "no partitions assigned yet"
    kafka_down = orch.kafka.why_down()
    if kafka_down is not None:
        down["kafka"] = kafka_down
    body = {
        "status": "ok" if not down else "degraded",
        "kafka": "intake" not in down and kafka_down is None,
        "workers": orch.registry.counts(),
        "outbox": {"held": orch.bus.held, "dropped": dict(orch.bus.dropped)},
    }
    if down:
        body["down"] = down
    return web.json_response(body, status=503 if down else 200)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[ORCH_KEY].metrics.render(), content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    text = resources.files("dac_runtime.orchestrator").joinpath("openapi.json").read_text()
    return web.Response(text=text, content_type="application/json")


async def put_token(request: web.Request) -> web.Response:
    body = await decode_body(request, TokenBody)
    request.app[ORCH_KEY].vault.set_claude_token(body.token)
    return web.Response(status=204)


async def get_token(request: web.Request) -> web.Response:
    return web.json_response({"configured": request.app[ORCH_KEY].vault.has_claude_token()})


async def delete_token(request: web.Request) -> web.Response:
    request.app[ORCH_KEY].vault.delete_claude_token()
    return web.Response(status=204)


def _credential_name(request: web.Request) -> str:
    name = request.match_info["name"]
    try:
        return msgspec.convert(name, CredentialName)
    except msgspec.ValidationError:
        raise _ApiError(
            400, "invalid_name", "credential names are environment variable names: [A-Z_][A-Z0-9_]*"
        ) from None


async def put_credential(request: web.Request) -> web.Response:
    name = _credential_name(request)
    body = await decode_body(request, SecretBody)
    request.app[ORCH_KEY].vault.set_credential(name, body.value)
    return web.Response(status=204)


async def list_credentials(request: web.Request) -> web.Response:
    return web.json_response({"credentials": request.app[ORCH_KEY].vault.list_credentials()})


async def delete_credential(request: web.Request) -> web.Response:
    name = _credential_name(request)
    if not request.app[ORCH_KEY].vault.delete_credential(name):
        raise _ApiError(404, "not_found", f"no credential {name}")
    return web.Response(status=204)


async def list_team(request: web.Request) -> web.Response:
    return web.json_response({"members": request.app[ORCH_KEY].store.list_api_keys()})


async def add_member(request: web.Request) -> web.Response:
    body = await decode_body(request, MemberBody)
    if body.role not in ROLES:
        raise _ApiError(400, "invalid_body", f"role must be one of {', '.join(ROLES)}")
    key_id, key = request.app[ORCH_KEY].vault.create_api_key(body.name, body.role)
    return web.json_response({"id": key_id, "name": body.name, "role": body.role, "apiKey": key}, status=201)


async def remove_member(request: web.Request) -> web.Response:
    member_id = request.match_info["id"]
    if member_id == request["api_key"]["id"]:
        raise _ApiError(409, "self_removal", "an owner cannot revoke the key it is using")
    if not request.app[ORCH_KEY].store.delete_api_key(member_id):
        raise _ApiError(404, "not_found", f"no member {member_id}")
    return web.Response(status=204)


async def create_worker_token(request: web.Request) -> web.Response:
    """A registration token for machines booted with it in their user data: limited uses, short life,
    exchanged on the worker's first hello for a per-worker credential, so nothing long-lived rides along."""
    body = await decode_body(request, WorkerTokenBody, empty_ok=True)
    token = new_token("dacr_")
    request.app[ORCH_KEY].vault.add_registration_token(token, uses=body.uses, ttl_s=body.ttl_seconds)
    expires = time.time() + body.ttl_seconds
    return web.json_response({"token": token, "uses": body.uses, "expiresAt": expires}, status=201)


async def get_bundle(request: web.Request) -> web.StreamResponse:
    """The runtime wheel that new worker machines install (public: code, not secrets; the machine checks
    its sha256 from its user data). Served only when DAC_BUNDLE_DIR is set, and only ``*.whl`` files."""
    directory = request.app[ORCH_KEY].settings.bundle_dir
    name = request.match_info["name"]
    if directory is None or not BUNDLE_NAME.fullmatch(name) or not (directory / name).is_file():
        raise _ApiError(404, "not_found", f"no bundle {name!r}")
    return web.FileResponse(directory / name, headers={"Content-Type": "application/octet-stream"})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/execute", execute),
        web.get("/api/executions", list_executions),
        web.get("/api/executions/{id}", get_execution),
        web.get("/api/executions/{id}/stream", stream_execution),
        web.post("/api/executions/{id}/cancel", cancel_execution),
        web.get("/api/workers", list_workers),
        web.get("/api/token", get_token),
        web.put("/api/token", put_token),
        web.delete("/api/token", delete_token),
        web.get("/api/credentials", list_credentials),
        web.put("/api/credentials/{name}", put_credential),
        web.delete("/api/credentials/{name}", delete_credential),
        web.post("/api/worker-tokens", create_worker_token),
        web.get("/api/team", list_team),
        web.post("/api/team", add_member),
        web.delete("/api/team/{id}", remove_member),
        web.get("/bundle/{name}", get_bundle),
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/openapi.json", openapi),
    ]
