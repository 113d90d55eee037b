"""Standard Webhooks request signing (byte-compatible with the `standardwebhooks` library)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid

SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    """Return the raw HMAC key of a `whsec_<base64>` secret.

    Padding is added like the reference library does, so unpadded secrets work too.
    """
    if not isinstance(secret, str) or not secret:
        raise ValueError("secret must be a non-empty string")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret is not valid base64 after the whsec_ prefix") from exc
    if not key:
        raise ValueError("secret decodes to an empty key")
    return key


def new_message_id() -> str:
    """A fresh `webhook-id`; unique per request so the server can reject replays."""
    return f"msg_{uuid.uuid4().hex}"


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.ts.body">`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_headers(
    key_id: str,
    key: bytes,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """All authentication headers for one request with the given raw body bytes."""
    msg_id = msg_id or new_message_id()
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "X-Codex-Key-Id": key_id,
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(key, msg_id, ts, body),
    }
