"""AES-256-GCM sealing, key derivation and token hashing for the orchestrator's vault and auth.

Sealed blob layout (all binary, base64url-free so SQLite stores it as a BLOB)::

    version (1) | key id (4) | nonce (12) | ciphertext + tag

The key id is a truncated SHA-256 of the key, so with a key list (rotation) decryption picks the
right key directly instead of trying each one. Associated data binds a ciphertext to what it is
(a credential's name), so a blob copied onto another credential's row fails authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_VERSION = 1
_HEADER = 1 + 4 + NONCE_BYTES


class CryptoError(Exception):
    """Decryption or key handling failed; the message never includes key or plaintext material."""


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def parse_hex_key(value: str, what: str = "key") -> bytes:
    """Parse a 64-hex-digit key, with an error that names the setting but never echoes the value."""
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise CryptoError(f"{what} is not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise CryptoError(f"{what} must be {KEY_BYTES} bytes ({KEY_BYTES * 2} hex digits), got {len(key)} bytes")
    return key


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive an independent 32-byte key for one purpose from a deployment secret (HKDF-SHA256).

    One deployment secret feeds the vault key and the token-hashing key; separate ``purpose``
    labels keep a compromise of one use from helping with the other.
    """
    if len(secret) < 16:
        raise CryptoError("deployment secret must be at least 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"dac:{purpose}".encode()).derive(secret)


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


class Keyring:
    """A list of AES-256 keys: the first encrypts, any of them decrypts (rotation)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise CryptoError("a keyring needs at least one key")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise CryptoError(f"every key must be {KEY_BYTES} bytes")
        self._primary = keys[0]
        self._by_id = {key_id(k): AESGCM(k) for k in keys}

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._primary).encrypt(nonce, plaintext, associated_data)
        return bytes([_VERSION]) + key_id(self._primary) + nonce + sealed

    def decrypt(self, blob: bytes, associated_data: bytes) -> bytes:
        if len(blob) < _HEADER + 16 or blob[0] != _VERSION:
            raise CryptoError("sealed value is truncated or of an unknown version")
        aead = self._by_id.get(blob[1:5])
        if aead is None:
            raise CryptoError("sealed value was encrypted with a key that is not in the keyring")
        try:
            return aead.decrypt(blob[5:_HEADER], blob[_HEADER:], associated_data)
        except InvalidTag:
            raise CryptoError("sealed value failed authentication (tampered, or bound to another name)") from None

    def needs_rewrap(self, blob: bytes) -> bool:
        """True when ``blob`` was sealed with an older key and should be re-encrypted."""
        return blob[1:5] != key_id(self._primary)


def hash_token(hash_key: bytes, token: str) -> str:
    """HMAC-SHA256 of a bearer token, hex. Stored instead of the token itself."""
    return hmac.new(hash_key, token.encode(), hashlib.sha256).hexdigest()


def verify_token(hash_key: bytes, token: str, stored_hash: str) -> bool:
    """Constant-time check of a presented token against its stored hash."""
    return hmac.compare_digest(hash_token(hash_key, token), stored_hash)


def new_token(prefix: str) -> str:
    """A random bearer token with a recognisable prefix (``dac_`` API keys, ``dacw_`` worker tokens)."""
    return f"{prefix}{secrets.token_urlsafe(32)}"
