r"""Request signing (v2): HMAC-SHA256 over method, path, query and body; Standard Webhooks headers.

The server (docs/api.md, "Authentication") verifies `webhook-signature: v2,<base64>` over::

    v2\n{METHOD}\n{canonical path}\n{canonical query}\n{webhook-id}\n{webhook-timestamp}\n{body}

so a signature is good for one request only, and each `webhook-id` is accepted once: every
request, every retry included, is signed afresh with a new id (`sign_headers` does).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from urllib.parse import quote, unquote_to_bytes

SECRET_PREFIX = "whsec_"
VERSION = "v2"
# Every visible ASCII character: the canonical query keeps them as sent.
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


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
    """A fresh `webhook-id`: the server accepts each id once per key (replays are refused)."""
    return f"msg_{uuid.uuid4().hex}"


def canonical_request(method: str, path: str, msg_id: str, timestamp: int, body: bytes) -> bytes:
    """The bytes a v2 signature covers, for a request target `path` (with any `?query`).

    The path is percent-decoded, then every byte but A-Z a-z 0-9 - . _ ~ / is written as %XX
    (what the server sees after its HTTP server decoded it); the query is kept as sent.
    """
    raw_path, _, query = path.partition("?")
    head = "\n".join(
        (
            VERSION,
            method.upper(),
            quote(unquote_to_bytes(raw_path), safe="/"),
            quote(query, safe=_QUERY_SAFE),
            msg_id,
            str(timestamp),
        )
    )
    return head.encode() + b"\n" + body


def signature(
    key: bytes,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/v1/events",
) -> str:
    """The `webhook-signature` value: `v2,<base64 HMAC-SHA256 of the canonical request>`."""
    signed = canonical_request(method, path, msg_id, timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{VERSION}," + base64.b64encode(digest).decode("ascii")


def sign_headers(
    key_id: str,
    key: bytes,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/v1/events",
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """All authentication headers for one request (a new webhook-id unless one is given).

    `path` is the API path as sent, with any query (`/v1/events/a%2Fb`, `/config`); `body` the
    raw bytes sent (empty for a GET).
    """
    msg_id = msg_id or new_message_id()
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "X-Codex-Key-Id": key_id,
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(key, msg_id, ts, body, method=method, path=path),
    }
