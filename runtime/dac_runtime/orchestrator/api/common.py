"""What every endpoint shares: the app key, errors as JSON, bearer tokens, strict bodies, the auth
middleware.

Every error is JSON ``{"error": code, "message": text}`` with the right status; bodies are decoded
into strict structs (unknown fields refused, so a typo is reported rather than silently ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from aiohttp import web

from ..bearer import bearer_token
from ..store import StoreUnavailable
from .access import allowed, role_of

if TYPE_CHECKING:
    from ..core import Orchestrator

T = TypeVar("T")
ORCH_KEY: web.AppKey[Orchestrator] = web.AppKey("orchestrator")
#: Paths called without an API key: probes, the spec, workers (their own tokens), joining (an invite code)
PUBLIC = {"/healthz", "/metrics", "/openapi.json", "/ws/worker", "/api/join"}


class Body(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    pass


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


async def decode_body(request: web.Request, kind: type[T], empty_ok: bool = False) -> T:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "body_too_large", f"request body exceeds {request.app[ORCH_KEY].settings.max_body_bytes} bytes"
        ) from None
    if not raw:
        if empty_ok:
            return kind()
        raise ApiError(400, "empty_body", "a JSON body is required")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_utf8", f"body is not valid UTF-8 at byte {exc.start}") from None


def path_value(request: web.Request, key: str, kind: Any, what: str) -> Any:
    """A URL path segment checked against ``kind``; 400 ``invalid_<key>`` saying ``what`` it must be."""
    try:
        return msgspec.convert(request.match_info[key], kind)
    except msgspec.ValidationError:
        raise ApiError(400, f"invalid_{key}", what) from None


def query_choice(request: web.Request, key: str, choices: tuple[str, ...]) -> str | None:
    """An optional query parameter that must be one of ``choices``; 400 saying which otherwise."""
    value = request.query.get(key)
    if value is not None and value not in choices:
        raise ApiError(400, "bad_request", f"{key} must be one of {', '.join(choices)}")
    return value


def query_limit(request: web.Request, default: int) -> int:
    try:
        limit = int(request.query.get("limit", str(default)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError(400, "bad_request", "limit must be an integer from 1 to 1000")
    return limit


CREDENTIAL_NAMES = "credential names are environment variable names: [A-Z_][A-Z0-9_]*"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@web.middleware
async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    orch = request.app[ORCH_KEY]
    try:
        # The console signs its pages in with a session of its own (console/sessions.py).
        if request.path not in PUBLIC and not request.path.startswith(("/bundle/", "/console")):
            token = bearer_token(request)
            key = await orch.vault.authenticate(token) if token else None
            if key is None:
                orch.metrics.auth_failures.labels("api").inc()
                raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer dac_...)")
            resource = request.match_info.route.resource
            if resource is not None and not allowed(key["role"], request.method, resource.canonical):
                raise ApiError(
                    403, "forbidden", f"a {role_of(key['role'])} key may not {request.method} {request.path}"
                )
            request["api_key"] = key
        return await handler(request)
    except ApiError as exc:
        orch.metrics.http_errors.labels(str(exc.status)).inc()
        return error(exc.status, exc.code, exc.message, exc.headers)
    except StoreUnavailable as exc:  # nothing was accepted: the caller retries shortly
        orch.metrics.http_errors.labels("503").inc()
        return error(503, "store_unavailable", str(exc), {"Retry-After": "1"})
    except web.HTTPException as exc:
        if exc.status >= 400:
            orch.metrics.http_errors.labels(str(exc.status)).inc()
            code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
            kept = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
            return error(exc.status, code, exc.reason, kept)
        raise
