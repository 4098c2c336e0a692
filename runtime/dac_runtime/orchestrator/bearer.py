"""The ``Authorization: Bearer`` credential, read the same way by the API and the worker endpoint."""

from __future__ import annotations

from aiohttp import web


def bearer_token(request: web.Request) -> str:
    """The credential of an ``Authorization: Bearer ...`` header; the scheme is case-insensitive (RFC 9110)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""
