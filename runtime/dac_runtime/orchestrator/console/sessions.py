"""Console sessions: an API key, presented once at sign-in, becomes a session cookie.

The cookie holds a random token whose hash is stored (as for API keys: the database alone signs no one
in), with the API key it stands for and a CSRF token that every form carries. A session lives twelve
hours and ends at sign-out, or at once when its API key is revoked: each request looks the key up
again, so the console never grants more than the key would. The cookie is HttpOnly, SameSite=Strict,
scoped to ``/console``, and Secure when the console is reached over TLS.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ..store import Store
    from ..team.vault import Vault

COOKIE = "dac_console"
LIFETIME_S = 12 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    key: dict[str, Any]  # the API key's row: id, name, role
    csrf: str
    expires_at: float

    @property
    def role(self) -> str:
        return str(self.key["role"])


class Sessions:
    def __init__(self, store: Store, vault: Vault) -> None:
        self._store, self._vault = store, vault

    async def sign_in(self, api_key: str) -> tuple[str, Session] | None:
        """A new session for a valid API key: (the cookie's value, the session); None otherwise."""
        key = await self._vault.authenticate(api_key.strip())
        if key is None:
            return None
        now = time.time()
        self._store.write("DELETE FROM console_sessions WHERE expires_at < ?", now)
        count = int(await self._store.fetchval("SELECT COUNT(*) FROM console_sessions") or 0)
        if count >= MAX_SESSIONS:  # the oldest make room: a flood of sign-ins cannot grow the table
            self._store.write(
                "DELETE FROM console_sessions WHERE hash IN"
                " (SELECT hash FROM console_sessions ORDER BY created_at LIMIT ?)",
                count - MAX_SESSIONS + 1,
            )
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self._store.write(
            "INSERT INTO console_sessions (hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            self._vault.hash(token),
            key["id"],
            csrf,
            now,
            now + LIFETIME_S,
        )
        await self._store.commit()
        return token, Session(key, csrf, now + LIFETIME_S)

    async def find(self, request: web.Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        row = await self._store.fetchrow(
            "SELECT s.csrf, s.expires_at, k.id, k.name, k.role FROM console_sessions s"
            " JOIN api_keys k ON k.id = s.key_id WHERE s.hash = ?",
            self._vault.hash(token),
        )
        if row is None or row[1] < time.time():
            return None
        return Session({"id": row[2], "name": row[3], "role": row[4]}, row[0], row[1])

    async def sign_out(self, request: web.Request) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            await self._store.execute("DELETE FROM console_sessions WHERE hash = ?", self._vault.hash(token))
            await self._store.commit()


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


def same_origin(request: web.Request) -> bool:
    """A browser's form post names where it came from; one from another site is refused (with the
    SameSite cookie and the CSRF token, the third of three locks)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return origin == f"{scheme}://{request.host}"


def set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").startswith("https")
    response.set_cookie(
        COOKIE, token, max_age=LIFETIME_S, path="/console", httponly=True, samesite="Strict", secure=secure
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/console")
