"""The webhook's encryption and signature (``../shared/spec/events.md`` section 2).

With an Encrypt Key the platform POSTs ``{"encrypt": base64(iv + ciphertext)}``:
AES-256-CBC, key = SHA-256(encrypt_key), PKCS#7 padding, a fresh 16-byte IV first. It
signs each push: ``X-Lark-Signature = sha256_hex(timestamp + nonce + encrypt_key +
raw_body)``. AES comes from the ``cryptography`` package (the ``events`` extra),
imported on first use, so the rest of the library works without it.

Every failure is an :class:`EventError` whose reason names the rule broken and never
the key, the ciphertext or the plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib.util
import os
from typing import TYPE_CHECKING

from ._ended import EventError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = ["decrypt", "encrypt", "require_cryptography", "signature", "signature_matches"]

_BLOCK = 16  # AES's block, and the IV's length


def require_cryptography() -> None:
    """:class:`EventError` naming the extra to install when ``cryptography`` is absent
    (called where an encrypt key is first taken, so a receiver fails at construction,
    not at its first event)."""
    if importlib.util.find_spec("cryptography") is None:
        raise EventError(
            "an encrypt_key needs the 'cryptography' package: pip install 'feishu-vc-async[events]'"
        )


def _cipher(encrypt_key: str, iv: bytes) -> Cipher[modes.CBC]:
    require_cryptography()
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(encrypt_key.encode()).digest()
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def encrypt(encrypt_key: str, plaintext: bytes, iv: bytes | None = None) -> str:
    """``plaintext`` as the platform encrypts it: base64 of the IV (random unless given,
    16 bytes) and the AES-256-CBC ciphertext of the PKCS#7-padded plaintext."""
    iv = os.urandom(_BLOCK) if iv is None else iv
    if len(iv) != _BLOCK:
        raise ValueError(f"iv: must be {_BLOCK} bytes, not {len(iv)}")
    pad = _BLOCK - len(plaintext) % _BLOCK
    encryptor = _cipher(encrypt_key, iv).encryptor()
    sealed = encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()
    return base64.b64encode(iv + sealed).decode("ascii")


def decrypt(encrypt_key: str, encrypted_b64: str) -> bytes:
    """The plaintext of a body's ``encrypt`` field; :class:`EventError` when it is not
    base64, not whole blocks, or its padding is wrong (a wrong key, most often)."""
    try:
        raw = base64.b64decode(encrypted_b64, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("the encrypt field is not base64") from None
    if len(raw) < 2 * _BLOCK or len(raw) % _BLOCK:
        raise EventError(f"the encrypted body is {len(raw)} bytes: not an IV and whole blocks")
    decryptor = _cipher(encrypt_key, raw[:_BLOCK]).decryptor()
    padded = decryptor.update(raw[_BLOCK:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= _BLOCK or not hmac.compare_digest(padded[-pad:], bytes([pad]) * pad):
        raise EventError("the encrypted body does not decrypt (bad padding: a wrong key?)")
    return padded[:-pad]


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature`` of a push: sha256 hex of timestamp, nonce, key and raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def signature_matches(
    given: str, timestamp: str, nonce: str, encrypt_key: str, body: bytes
) -> bool:
    """Whether ``given`` is the push's signature, compared in constant time."""
    expected = signature(timestamp, nonce, encrypt_key, body)
    return hmac.compare_digest(given.encode(), expected.encode())
