"""Test helper: sign requests the way the API verifies them (docs/api.md), written independently.

`sign_headers` signs v2 (method, path, query and body) by default, for POST /v1/events unless
told otherwise; `version="v1"` gives the Standard Webhooks body-only signature (webhook sources,
and POST /v1/events while signatureV1Allowed is on).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from urllib.parse import quote, unquote_to_bytes

# Every visible ASCII character: the canonical query keeps them as sent.
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))


def canonical_target(path: str) -> tuple[str, str]:
    """(canonical path, canonical query) of a request target such as `/v1/events/a%20b?x=1`.

    The path is percent-decoded and re-encoded (all but A-Z a-z 0-9 - . _ ~ / as %XX); the query
    is kept as sent (anything outside visible ASCII as %XX).
    """
    raw_path, _, query = path.partition("?")
    return quote(unquote_to_bytes(raw_path), safe="/"), quote(query, safe=_VISIBLE)


def v2_content(method: str, path: str, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """What a v2 signature covers (docs/api.md, "Authentication")."""
    target = canonical_target(path)
    head = "\n".join(("v2", method.upper(), *target, msg_id, str(timestamp)))
    return head.encode() + b"\n" + body


def sign_headers(
    key_id: str,
    secret: str,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/v1/events",
    version: str = "v2",
    timestamp: int | None = None,
    msg_id: str | None = None,
) -> dict[str, str]:
    """HTTP headers signing one request (method, path with any query, body) with a whsec_ secret."""
    ts = int(time.time()) if timestamp is None else timestamp
    mid = msg_id or f"msg_{uuid.uuid4().hex}"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    if version == "v1":
        content = f"{mid}.{ts}.".encode() + body
    else:
        content = v2_content(method, path, mid, ts, body)
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return {
        "X-Codex-Key-Id": key_id,
        "webhook-id": mid,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"{version}," + base64.b64encode(mac).decode(),
    }


def verify_v2(secret: str, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
    """True when a listed v2 signature of `headers` covers this request (the SDK stand-in)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    content = v2_content(
        method, path, lowered.get("webhook-id", ""), lowered.get("webhook-timestamp", ""), body
    )
    expected = "v2," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return expected in lowered.get("webhook-signature", "").split(" ")


def django_headers(headers: dict[str, str]) -> dict[str, str]:
    """The same headers as Django test-client keyword arguments (HTTP_X_...)."""
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
