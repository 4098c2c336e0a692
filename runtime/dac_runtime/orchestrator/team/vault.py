"""Credentials, the Claude token, API keys and worker tokens: sealed or hashed, never stored plain.

Sealed values are bound (AES-GCM associated data) to their row name, so a blob moved to another
name does not decrypt. Tokens are stored as HMAC-SHA256 under a key derived from the master key,
so a copy of the database alone lets nobody authenticate.

Rotation (a new ``DAC_MASTER_KEY``, the old one in ``DAC_PREVIOUS_MASTER_KEYS``): at start every
sealed value is re-sealed under the new key, and a token hashed under an old key is re-hashed the
first time it is presented; once every key and worker has called in, the old key can be dropped.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ...crypto import Keyring, derive_key, hash_token, new_token
from ..store import Store
from .claude_token import TokenExpired, TokenInfo

CREDENTIAL_PREFIX = "credential:"
CLAUDE_TOKEN = "claude:oauth-token"  # noqa: S105 - a row name, not a secret
CLAUDE_TOKEN_INFO = "claude:oauth-token-info"  # noqa: S105 - its mint and expiry times
CLAUDE_ENV = "CLAUDE_CODE_OAUTH_TOKEN"


_UNREAD: Any = object()


class MissingCredential(Exception):
    pass


#: sealed values kept in memory at most (credentials and the Claude token: a team has a few dozen)
BLOBS_MAX = 10_000


class Vault:
    def __init__(self, store: Store, master_keys: list[bytes], changed: Callable[[], None] = lambda: None) -> None:
        self._store, self._changed = store, changed  # changed: tell the other orchestrators
        self._ring = Keyring([derive_key(k, "vault") for k in master_keys])
        self._hash_keys = [derive_key(k, "token-hash") for k in master_keys]
        #: API key rows by token hash: every request authenticates, and keys change only through here
        self._keys: dict[str, dict[str, Any]] = {}
        self._token_info: Any = _UNREAD
        #: sealed values as stored (ciphertext: opened on each use, never kept open), so a dispatch
        #: costs no store read for them; forgotten when the team changes (see :mod:`.changes`)
        self._blobs: dict[str, bytes] = {}

    # --- sealed values --------------------------------------------------------------------------

    async def _seal(self, name: str, value: str) -> None:
        blob = self._ring.encrypt(value.encode(), name.encode())
        await self._store.put_sealed(name, blob)
        self._remember(name, blob)

    def _remember(self, name: str, blob: bytes) -> None:
        if len(self._blobs) < BLOBS_MAX or name in self._blobs:
            self._blobs[name] = blob

    async def _open(self, name: str) -> str | None:
        blob = self._blobs.get(name)
        if blob is None:
            blob = await self._store.get_sealed(name)
            if blob is None:
                return None
            self._remember(name, blob)
        value = self._ring.decrypt(blob, name.encode()).decode()
        if self._ring.needs_rewrap(blob):
            await self._seal(name, value)
        return value

    async def reseal(self) -> int:
        """Re-seal every value sealed under an older master key with the current one; how many."""
        count = 0
        for row in await self._store.list_sealed(""):
            blob = await self._store.get_sealed(row["name"])
            if blob is not None and self._ring.needs_rewrap(blob):
                await self._seal(row["name"], self._ring.decrypt(blob, row["name"].encode()).decode())
                count += 1
        return count

    async def set_credential(self, name: str, value: str) -> None:
        await self._seal(CREDENTIAL_PREFIX + name, value)

    async def delete_credential(self, name: str) -> bool:
        self._blobs.pop(CREDENTIAL_PREFIX + name, None)
        return await self._store.delete_sealed(CREDENTIAL_PREFIX + name)

    async def list_credentials(self) -> list[dict[str, Any]]:
        return await self._store.list_sealed(CREDENTIAL_PREFIX)

    async def set_claude_token(
        self, token: str, expires_at: float | None = None, minted_at: float | None = None
    ) -> TokenInfo:
        info = TokenInfo.describe(token, expires_at, minted_at)
        await self._seal(CLAUDE_TOKEN, token)
        await self._seal(CLAUDE_TOKEN_INFO, msgspec.json.encode(info).decode())
        self._token_info = info
        self._changed()
        return info

    async def load(self) -> None:
        """Read the stored token's mint and expiry times into memory (every dispatch asks), and forget
        the API keys authenticated so far (one revoked elsewhere must stop working here too)."""
        self._keys.clear()
        self._blobs.clear()
        has_token = await self.has_claude_token()
        raw = await self._open(CLAUDE_TOKEN_INFO) if has_token else None
        self._token_info = msgspec.json.decode(raw, type=TokenInfo) if raw else (TokenInfo() if has_token else None)

    def claude_token_info(self) -> TokenInfo | None:
        """Mint and expiry times of the stored token (None without one), as :meth:`load` read them."""
        return None if self._token_info is _UNREAD else self._token_info

    async def delete_claude_token(self) -> bool:
        self._token_info = None
        self._blobs.pop(CLAUDE_TOKEN, None)
        self._blobs.pop(CLAUDE_TOKEN_INFO, None)
        await self._store.delete_sealed(CLAUDE_TOKEN_INFO)
        deleted = await self._store.delete_sealed(CLAUDE_TOKEN)
        self._changed()
        return deleted

    async def has_claude_token(self) -> bool:
        return await self._store.get_sealed(CLAUDE_TOKEN) is not None

    def require_live_claude_token(self) -> None:
        """Raise :class:`TokenExpired` when the stored Claude token no longer works (none stored is fine)."""
        info = self.claude_token_info()
        if info is not None and info.expired():
            raise TokenExpired(info.warning() or "the Claude token expired")

    async def environment_for(self, credential_names: list[str]) -> dict[str, str]:
        """Decrypt what one execution needs into a fresh dict (the caller hands it off and drops it)."""
        env: dict[str, str] = {}
        self.require_live_claude_token()
        # None: no token as of the last read of the team (a token set elsewhere bumps the counter)
        token = await self._open(CLAUDE_TOKEN) if self._token_info is not None else None
        if token:
            env[CLAUDE_ENV] = token
        for name in credential_names:
            value = await self._open(CREDENTIAL_PREFIX + name)
            if value is None:
                raise MissingCredential(name)
            env[name] = value
        return env

    # --- API keys -------------------------------------------------------------------------------

    def hash(self, token: str) -> str:
        return hash_token(self._hash_keys[0], token)

    async def _rehashed(self, table: str, token: str, lookup: Any) -> Any:
        """The row of a token hashed under a previous master key, re-hashed under the current one."""
        for old_key in self._hash_keys[1:]:
            old = hash_token(old_key, token)
            row = await lookup(old)
            if row is not None:
                await self._store.rehash(table, old, self.hash(token))
                return {**row, "hash": self.hash(token)} if "hash" in row else row
        return None

    async def create_api_key(self, name: str, role: str) -> tuple[str, str]:
        key = new_token("dac_")
        key_id = "key_" + secrets.token_hex(6)
        await self._store.add_api_key(key_id, name, role, self.hash(key))
        return key_id, key

    async def adopt_api_key(self, key: str, name: str, role: str) -> None:
        """Register a key generated elsewhere (the deploy tool's owner key) by its hash."""
        await self._store.add_api_key("key_owner", name, role, self.hash(key))

    async def authenticate(self, key: str) -> dict[str, Any] | None:
        if not key.startswith("dac_"):
            return None
        digest = self.hash(key)
        row = self._keys.get(digest)
        if row is None:
            row = await self._store.api_key_by_hash(digest) or await self._rehashed(
                "api_keys", key, self._store.api_key_by_hash
            )
            if row is not None and len(self._keys) < 10_000:
                self._keys[digest] = row
        return row

    async def revoke_api_key(self, key_id: str) -> bool:
        """Delete a member's key; it stops working with the next request."""
        self._keys.clear()
        deleted = await self._store.delete_api_key(key_id)
        self._changed()  # after the delete: a peer that reads the keys again must not find it
        return deleted

    # --- worker tokens --------------------------------------------------------------------------

    async def add_registration_token(self, token: str, uses: int | None = 1, ttl_s: float | None = None) -> None:
        expires = time.time() + ttl_s if ttl_s else None
        await self._store.add_worker_token(self.hash(token), "registration", None, uses, expires)

    async def issue_worker_credential(self, worker_id: str, registration_hash: str) -> str:
        """A worker's own credential, replacing any earlier one for that id (one per worker, so a
        reusable registration token cannot make the table grow without limit)."""
        credential = new_token("dacw_")
        await self._store.replace_worker_credential(worker_id, self.hash(credential), registration_hash)
        return credential

    async def check_worker_token(self, token: str) -> dict[str, Any] | None:
        """The token's row if it may connect now (known, unexpired, uses left), else None."""
        lookup = self._store.worker_token
        row = await lookup(self.hash(token)) or await self._rehashed("worker_tokens", token, lookup)
        if row is None or (row["expires_at"] is not None and row["expires_at"] < time.time()):
            return None
        if row["kind"] == "registration" and row["uses_left"] is not None and row["uses_left"] <= 0:
            return None
        return row

    async def spend_registration(self, token: str) -> bool:
        return await self._store.use_registration_token(self.hash(token))
