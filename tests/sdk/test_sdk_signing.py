"""The SDK's Standard Webhooks signatures must match the reference library byte for byte."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from codex_sdk import signing
from codex_sdk.events import build_event, encode_batch, encode_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_identical_to_reference_library() -> None:
    body = encode_batch([encode_event(build_event("door.opened", {"name": "Zoë ☃"}))])
    key = signing.decode_secret(SECRET)
    headers = signing.sign_headers("ck_1", key, body, msg_id="msg_abc", timestamp=1_700_000_000)
    expected = Webhook(SECRET).sign(
        "msg_abc", datetime.fromtimestamp(1_700_000_000, UTC), body.decode()
    )
    assert headers["webhook-signature"] == expected
    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["X-Codex-Key-Id"] == "ck_1"


def test_fresh_headers_verify_with_library() -> None:
    body = b'{"events":[]}'
    headers = signing.sign_headers("ck_1", signing.decode_secret(SECRET), body)
    assert headers["webhook-id"].startswith("msg_")
    Webhook(SECRET).verify(body, headers)  # raises on mismatch
    # Empty body (GET /config) signs too.
    Webhook(SECRET).verify(
        b"", signing.sign_headers("ck_1", signing.decode_secret(SECRET), b""), json_parse=False
    )


def test_message_ids_are_unique() -> None:
    key = signing.decode_secret(SECRET)
    ids = {signing.sign_headers("ck", key, b"")["webhook-id"] for _ in range(200)}
    assert len(ids) == 200


def test_wrong_secret_or_tampered_body_is_rejected() -> None:
    body = b'{"events":[]}'
    headers = signing.sign_headers("ck_1", signing.decode_secret(SECRET), body)
    other = "whsec_" + base64.b64encode(b"another key entirely").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)


def test_unpadded_and_bare_secrets_decode_like_the_library() -> None:
    raw = b"sixteen byte key"
    padded = base64.b64encode(raw).decode()  # 16 bytes -> ends with "=="
    unpadded = padded.rstrip("=")
    assert padded != unpadded
    assert signing.decode_secret("whsec_" + unpadded) == raw
    assert signing.decode_secret(padded) == raw
    body = b"{}"
    headers = signing.sign_headers("ck", signing.decode_secret("whsec_" + unpadded), body)
    Webhook("whsec_" + unpadded).verify(body, headers)


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_!!!!"])
def test_unusable_secrets(bad: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        signing.decode_secret(bad)
