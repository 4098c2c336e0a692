"""Every request a client sends to an emulator, and every response the emulator returns, checked against
the provider's official OpenAPI document, so neither our client nor our emulator can drift into fiction."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"


@dataclass
class SpecChecker:
    document: Path
    server: str
    violations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.openapi = OpenAPI.from_file_path(str(self.document))

    def _request(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> MockRequest:
        content_type = headers.get("Content-Type", headers.get("content-type", "application/json")).split(";")[0]
        args = dict(parse_qsl(query, keep_blank_values=True))
        return MockRequest(
            self.server, method.lower(), path, args=args, headers=headers, data=body or None, content_type=content_type
        )

    def check_request(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
        try:
            self.openapi.validate_request(self._request(method, path, query, headers, body))
        except Exception as exc:  # openapi-core raises a family of errors; the message is what matters
            return self._record(f"request {method} {path}?{query}: {_explain(exc)}")
        return None

    def check_response(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, status: int, payload: bytes
    ) -> None:
        request = self._request(method, path, query, headers, body)
        response = MockResponse(payload, status_code=status, content_type="application/json" if payload else None)
        try:
            self.openapi.validate_response(request, response)
        except Exception as exc:
            self._record(f"response {status} to {method} {path}: {_explain(exc)}")

    def _record(self, message: str) -> str:
        with self._lock:
            self.violations.append(message)
        return message


def _explain(exc: Exception) -> str:
    causes = [str(exc)]
    inner = getattr(exc, "__cause__", None)
    if inner is not None:
        causes.append(str(inner))
        for sub in getattr(inner, "schema_errors", []) or []:
            causes.append(getattr(sub, "message", str(sub)))
    return " | ".join(c for c in causes if c)[:800]
