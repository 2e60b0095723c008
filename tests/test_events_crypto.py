"""The webhook's encryption and signature (``feishu_vc_async.events._crypto``), checked
against the official SDK's own code (lark-oapi's ``AESCipher`` and its dispatcher's
signature check) and the platform docs' example."""

from __future__ import annotations

import base64
import hashlib
import sys

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st
from lark_oapi.core.exception import AccessDeniedException
from lark_oapi.core.model import RawRequest
from lark_oapi.core.utils import AESCipher
from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

from feishu_vc_async import FeishuError
from feishu_vc_async.events import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventError,
    WebhookReceiver,
    decrypt,
    encrypt,
    signature,
)

KEY = "kx7-Encrypt-Key-of-the-app"


def test_the_platform_docs_example_decrypts() -> None:
    # The platform's own example: Encrypt Key "test key", plaintext "hello world".
    vector = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="
    assert decrypt("test key", vector) == b"hello world"
    assert AESCipher("test key").decrypt_str(vector) == "hello world"
    iv = base64.b64decode(vector)[:16]
    assert encrypt("test key", b"hello world", iv=iv) == vector


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=300), key=st.text(min_size=1, max_size=40))
def test_what_we_encrypt_lark_oapi_decrypts_and_back(plaintext: bytes, key: str) -> None:
    sealed = encrypt(key, plaintext)
    assert decrypt(key, sealed) == plaintext
    assert AESCipher(key).decrypt(base64.b64decode(sealed)) == plaintext


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_a_vector_made_as_lark_oapi_keys_it_decrypts_with_ours(size: int) -> None:
    plaintext = bytes(range(256))[:size] if size <= 256 else b"x" * size
    iv = bytes(range(16))
    pad = 16 - size % 16
    # AESCipher's own key derivation, then AES-CBC with pycryptodome (lark-oapi's).
    cipher = AES.new(AESCipher(KEY).digest, AES.MODE_CBC, iv)
    vector = base64.b64encode(iv + cipher.encrypt(plaintext + bytes([pad]) * pad)).decode()
    assert decrypt(KEY, vector) == plaintext
    assert AESCipher(KEY).decrypt(base64.b64decode(vector)) == plaintext
    assert encrypt(KEY, plaintext, iv=iv) == vector


def test_each_encryption_takes_a_fresh_iv() -> None:
    assert encrypt(KEY, b"{}") != encrypt(KEY, b"{}")


def test_the_signature_is_the_one_lark_oapi_checks() -> None:
    body = b'{"encrypt":"abc"}'
    timestamp, nonce = "1780000000", "n0nce"
    ours = signature(timestamp, nonce, KEY, body)
    expected = hashlib.sha256((timestamp + nonce + KEY).encode() + body).hexdigest()
    assert ours == expected
    handler = EventDispatcherHandler.builder(KEY, "token").build()  # its own check
    request = RawRequest()
    request.body = body
    request.headers = {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: ours}
    handler._verify_sign(request, KEY)  # raises if it does not match
    request.headers[SIGNATURE_HEADER] = signature(timestamp, nonce, KEY, body + b" ")
    with pytest.raises(AccessDeniedException):
        handler._verify_sign(request, KEY)


@pytest.mark.parametrize(
    ("sealed", "rule"),
    [
        ("not base64 at all!", "not base64"),
        (base64.b64encode(b"short").decode(), "not an IV and whole blocks"),
        (base64.b64encode(b"x" * 40).decode(), "not an IV and whole blocks"),
    ],
)
def test_a_body_that_cannot_be_decrypted_names_the_rule(sealed: str, rule: str) -> None:
    with pytest.raises(EventError, match=rule):
        decrypt(KEY, sealed)


def test_a_wrong_key_is_refused_and_the_error_shows_no_secret() -> None:
    # A fixed IV: a wrong key passes the padding check for about 1 key in 256, not this one.
    sealed = encrypt(KEY, b'{"secret-plaintext": 1}', iv=bytes(16))
    with pytest.raises(EventError, match="does not decrypt") as caught:
        decrypt("another key", sealed)
    assert isinstance(caught.value, FeishuError)
    for secret in (KEY, "another key", "secret-plaintext", sealed):
        assert secret not in str(caught.value)


def test_an_encrypt_key_without_cryptography_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def on_ended(event: object) -> None:
        return None

    monkeypatch.setitem(sys.modules, "cryptography", None)  # find_spec finds nothing
    with pytest.raises(EventError, match=r"feishu-vc-async\[events\]"):
        WebhookReceiver(verification_token="t", encrypt_key=KEY, on_ended=on_ended)
    with pytest.raises(EventError, match=r"feishu-vc-async\[events\]"):
        encrypt(KEY, b"{}")
    # Without a key it is not needed.
    WebhookReceiver(verification_token="t", encrypt_key=None, on_ended=on_ended)
