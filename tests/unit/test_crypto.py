"""AES-GCM sealing, rotation, tamper detection, derivation and token hashing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dac_runtime import crypto


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_round_trip(plaintext, ad):
    ring = crypto.Keyring([crypto.generate_key()])
    assert ring.decrypt(ring.encrypt(plaintext, ad), ad) == plaintext


def test_nonce_is_fresh_each_time():
    ring = crypto.Keyring([crypto.generate_key()])
    assert ring.encrypt(b"same", b"ad") != ring.encrypt(b"same", b"ad")


def test_associated_data_binds_value_to_its_name():
    ring = crypto.Keyring([crypto.generate_key()])
    blob = ring.encrypt(b"secret", b"credential:GITHUB_TOKEN")
    with pytest.raises(crypto.CryptoError, match="authentication"):
        ring.decrypt(blob, b"credential:OTHER")


@pytest.mark.parametrize("position", [0, 3, 10, 20, -1])
def test_any_flipped_byte_is_detected(position):
    ring = crypto.Keyring([crypto.generate_key()])
    blob = bytearray(ring.encrypt(b"secret value", b"ad"))
    blob[position] ^= 0x01
    with pytest.raises(crypto.CryptoError):
        ring.decrypt(bytes(blob), b"ad")


def test_truncated_blob_is_refused():
    ring = crypto.Keyring([crypto.generate_key()])
    with pytest.raises(crypto.CryptoError, match="truncated"):
        ring.decrypt(ring.encrypt(b"x", b"ad")[:20], b"ad")


def test_rotation_first_key_encrypts_any_key_decrypts():
    old, new = crypto.generate_key(), crypto.generate_key()
    old_blob = crypto.Keyring([old]).encrypt(b"v", b"ad")
    rotated = crypto.Keyring([new, old])
    assert rotated.decrypt(old_blob, b"ad") == b"v"
    assert rotated.needs_rewrap(old_blob)
    new_blob = rotated.encrypt(b"v", b"ad")
    assert not rotated.needs_rewrap(new_blob)
    with pytest.raises(crypto.CryptoError, match="not in the keyring"):
        crypto.Keyring([old]).decrypt(new_blob, b"ad")


def test_derivation_is_deterministic_and_purpose_separated():
    secret = crypto.generate_key()
    assert crypto.derive_key(secret, "vault") == crypto.derive_key(secret, "vault")
    assert crypto.derive_key(secret, "vault") != crypto.derive_key(secret, "tokens")
    assert len(crypto.derive_key(secret, "vault")) == 32
    with pytest.raises(crypto.CryptoError):
        crypto.derive_key(b"short", "vault")


def test_parse_hex_key_errors_never_echo_the_value():
    bad = "zz" * 32
    with pytest.raises(crypto.CryptoError) as info:
        crypto.parse_hex_key(bad, "DAC_MASTER_KEY")
    assert bad not in str(info.value) and "DAC_MASTER_KEY" in str(info.value)
    with pytest.raises(crypto.CryptoError, match="32 bytes"):
        crypto.parse_hex_key("ab" * 31)
    assert crypto.parse_hex_key("ab" * 32) == b"\xab" * 32


def test_token_hashing():
    key = crypto.generate_key()
    token = crypto.new_token("dac_")
    assert token.startswith("dac_") and len(token) > 40
    stored = crypto.hash_token(key, token)
    assert token not in stored
    assert crypto.verify_token(key, token, stored)
    assert not crypto.verify_token(key, token + "x", stored)
    assert not crypto.verify_token(crypto.generate_key(), token, stored)
