"""What is known about the Claude token without reading it: when it was made, when it stops working.

Facts of Claude Code 2.1.197: ``claude setup-token`` makes a token (``sk-ant-oat01-...``, scope
``user:inference``) that lives one year, which the CLI reads from ``CLAUDE_CODE_OAUTH_TOKEN`` and never
refreshes. So its expiry is known when its mint time is; a token pasted without either is assumed to
have been minted when it was stored, and its expiry is then marked an estimate (the real one may be
earlier). Once it has expired, executions are refused with a reason that says so, rather than started
to fail at the agent's first request.
"""

from __future__ import annotations

import time

import msgspec

SETUP_TOKEN_PREFIX = "sk-ant-oat01-"  # noqa: S105 - a prefix, not a secret
SETUP_TOKEN_LIFETIME_S = 365 * 86400
WARN_BEFORE_S = 30 * 86400
#: Where a token is revoked: there is no API for it.
REVOKE_HINT = "revoke it in your Claude account's settings (claude.ai: Settings, Claude Code)"


class TokenInfo(msgspec.Struct, rename="camel", kw_only=True):
    minted_at: float | None = None
    expires_at: float | None = None
    #: The expiry assumes the token was minted when it was stored.
    estimated: bool = False
    stored_at: float = 0.0

    @classmethod
    def describe(cls, token: str, expires_at: float | None, minted_at: float | None) -> TokenInfo:
        now = time.time()
        estimated = False
        if expires_at is None and token.startswith(SETUP_TOKEN_PREFIX):
            estimated = minted_at is None
            expires_at = (minted_at if minted_at is not None else now) + SETUP_TOKEN_LIFETIME_S
        return cls(minted_at=minted_at, expires_at=expires_at, estimated=estimated, stored_at=now)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())

    def warning(self, now: float | None = None) -> str | None:
        """A line for status, CLI and API when the token has expired or will within 30 days."""
        if self.expires_at is None:
            return None
        left = self.expires_at - (now or time.time())
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.expires_at))
        if left <= 0:
            return f"the Claude token expired at {when}: connect a new one (dac-provision token set)"
        if left < WARN_BEFORE_S:
            return f"the Claude token expires in {left / 86400:.0f} day(s), at {when}: connect a new one soon"
        return None


class TokenExpired(Exception):
    """An execution cannot run: the stored Claude token no longer works."""
