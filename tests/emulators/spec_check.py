"""Every request a client sends to an emulator, and every response the emulator returns, checked against
the provider's official OpenAPI document, so neither our client nor our emulator can drift into fiction."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData
from openapi_schema_validator import OAS30Validator

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"


@dataclass
class SpecChecker:
    document: Path
    server: str
    #: A components/schemas name that error bodies follow when an operation leaves that status out
    #: (Fly documents mostly success codes, yet answers 404, 408, 409 and 429 like any API).
    error_schema: str | None = None
    violations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._document = _load(self.document)
        self.openapi = OpenAPI.from_dict(_parameters_without_read_only(self._document))

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
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        status: int,
        payload: bytes,
        response_headers: dict[str, str] | None = None,
    ) -> None:
        request = self._request(method, path, query, headers, body)
        response = MockResponse(
            payload,
            status_code=status,
            headers=response_headers or {},
            content_type="application/json" if payload else None,
        )
        try:
            self.openapi.validate_response(request, response)
        except MissingData as exc:
            # openapi-core reads an empty ``content: {}`` as "body required"; OpenAPI means "no body".
            if payload or self._documented_content(method, path, status) != {}:
                self._record(f"response {status} to {method} {path}: {_explain(exc)}")
        except ResponseNotFound as exc:
            if not (self.error_schema and status >= 400):
                self._record(f"response {status} to {method} {path}: {_explain(exc)}")
                return
            problem = self._check_error_body(payload)
            if problem:
                self._record(f"response {status} to {method} {path}: not a {self.error_schema}: {problem}")
        except Exception as exc:
            self._record(f"response {status} to {method} {path}: {_explain(exc)}")

    def _documented_content(self, method: str, path: str, status: int) -> Any:
        for template, operations in self._document["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) and method.lower() in operations:
                response = operations[method.lower()]["responses"].get(str(status), {})
                return response.get("content")
        return None

    def _check_error_body(self, payload: bytes) -> str | None:
        try:
            body = json.loads(payload)
        except ValueError:
            return "not JSON"
        schema = _inline(self._document, {"$ref": f"#/components/schemas/{self.error_schema}"})
        errors = [e.message for e in OAS30Validator(schema).iter_errors(body)]
        return "; ".join(errors) or None

    def _record(self, message: str) -> str:
        with self._lock:
            self.violations.append(message)
        return message


#: Known slips in the vendored documents, each corrected to what the upstream spec and the API say.
#: The DigitalOcean bundle went through a YAML 1.1 round trip that turned the droplet status ``off``
#: into the boolean ``false`` (its own description still lists "off"; the API sends "off").
CORRECTIONS = {
    ("digitalocean-openapi.yaml", ("components", "schemas", "droplet", "properties", "status", "enum")): {False: "off"},
}


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    for (name, where), replace in CORRECTIONS.items():
        if name == path.name:
            node: Any = document
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = [replace.get(v, v) if isinstance(v, bool) else v for v in node[where[-1]]]
    return document


def _parameters_without_read_only(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI's ``readOnly`` concerns properties, but openapi-core also applies it to a path parameter's
    schema: DigitalOcean's ``ssh_key_identifier`` (an id or a fingerprint, both marked readOnly) would
    then refuse every value. Parameter schemas are inlined without it; nothing else changes."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "readOnly"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    parameters = document.get("components", {}).get("parameters", {})
    for parameter in parameters.values():
        if "schema" in parameter:
            parameter["schema"] = strip(_inline(document, parameter["schema"]))
    return document


def _inline(document: dict[str, Any], node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (the error schemas are small)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _inline(document, target)
        return {k: _inline(document, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(document, v) for v in node]
    return node


def _explain(exc: Exception) -> str:
    """The reasons first (the schema errors), then the exception's own text, which quotes the whole value."""
    reasons: list[str] = []
    inner = getattr(exc, "__cause__", None)
    for error in getattr(inner, "schema_errors", None) or getattr(exc, "schema_errors", None) or []:
        path = "/".join(str(p) for p in getattr(error, "absolute_path", []) or [])
        reasons.append(f"{path}: {getattr(error, 'message', error)}"[:300])
    text = " | ".join([*reasons, type(exc).__name__ + ": " + str(exc), str(inner or "")])
    return text[:1200]
