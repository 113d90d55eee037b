"""Test helper: sign requests the way the API verifies them (Standard Webhooks + key id)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid


def sign_headers(
    key_id: str,
    secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    msg_id: str | None = None,
) -> dict[str, str]:
    """HTTP headers for a request body signed with a whsec_ secret."""
    ts = int(time.time()) if timestamp is None else timestamp
    mid = msg_id or f"msg_{uuid.uuid4().hex}"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "X-Codex-Key-Id": key_id,
        "webhook-id": mid,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def django_headers(headers: dict[str, str]) -> dict[str, str]:
    """The same headers as Django test-client keyword arguments (HTTP_X_...)."""
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
