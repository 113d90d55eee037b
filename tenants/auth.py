"""Request signing: Standard Webhooks HMAC + X-Codex-Key-Id.

`authenticate(request)` verifies a plain Django request (POST /v1/events, the hot path, skips
DRF); `SignatureAuthentication` wraps it for DRF views such as GET /config::

    from tenants.auth import SignedRequestMixin

    class ConfigView(SignedRequestMixin, APIView):
        def get(self, request):
            key = request.auth  # a tenants.selectors.ResolvedKey (tenant_id, tenant_slug, ...)

or set ``authentication_classes = [SignatureAuthentication]`` and
``permission_classes = [HasSigningKey]`` yourself.

The contract (docs/api.md):

* ``X-Codex-Key-Id`` names a signing key; ``webhook-id``, ``webhook-timestamp`` (unix seconds) and
  ``webhook-signature`` (space-separated ``v1,<base64>`` entries) carry an HMAC-SHA256 over
  ``{webhook-id}.{webhook-timestamp}.{raw body bytes}`` keyed with the base64-decoded secret.
* Accepted when any listed v1 signature matches any usable secret of the key (constant-time
  compare) and the timestamp is within +-300 s of the server clock.
* Failures raise ``codex.errors.ApiError`` with status 401 and a ``WWW-Authenticate`` header, code
  one of ``missing_signature``, ``invalid_signature``, ``timestamp_out_of_tolerance``,
  ``unknown_key``, ``revoked_key``; a correctly signed request of a suspended tenant gets 403
  ``tenant_suspended``. PostgreSQL unreachable during the key lookup: its OperationalError
  propagates and the edge answers 503 ``unavailable`` (codex.errors.domain_error).
* Success returns ``(None, ResolvedKey)``: ``request.user`` is None, ``request.auth`` the key, and
  the tenant is bound to the logging context. Authentication never touches rate-limit counters,
  so a failed request cannot spend a tenant's quota (views rate-limit after authenticating).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from datetime import UTC, datetime

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from codex import context
from codex.errors import ApiError, Unavailable
from tenants import metrics
from tenants.crypto import SecretUndecryptable
from tenants.selectors import ResolvedKey, signing_key_resolve_cached
from tenants.services.keys import signing_key_touch

TOLERANCE_S = 300
KEY_ID_HEADER = "X-Codex-Key-Id"
SIGNED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
WWW_AUTHENTICATE = (
    'Codex-Signature realm="codex", '
    'headers="X-Codex-Key-Id webhook-id webhook-timestamp webhook-signature"'
)
# Bound what we are willing to parse from headers before any key lookup.
_MAX_SIGNATURES = 8
_MAX_HEADER_LEN = 2048
# last_used_at is written at most once a minute per key per process (it is informational).
_TOUCH_EVERY_S = 60.0
_touched: dict[str, float] = {}
_touched_lock = threading.Lock()


def _fail(code: str, message: str) -> ApiError:
    metrics.AUTH_FAILURES.labels(code=code).inc()
    return ApiError(code, message, status_code=401, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def expected_signature(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest a request must carry (before base64).

    WSGI hands header values over as latin-1-decoded text; encoding them back as latin-1
    recovers the exact bytes the client signed (a UTF-8 webhook-id included).
    """
    try:
        prefix = f"{msg_id}.{timestamp}.".encode("latin-1")
    except UnicodeEncodeError:  # not from a real HTTP server: nothing can match it
        return b""
    return hmac.new(secret, prefix + body, hashlib.sha256).digest()


def _candidate_signatures(header: str) -> list[bytes]:
    """Decode the v1 entries of a webhook-signature header; ignore other versions and junk."""
    found: list[bytes] = []
    for entry in header.split(" ")[:_MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    *, key: ResolvedKey, msg_id: str, timestamp: str, signature_header: str, body: bytes
) -> bool:
    """True when any v1 signature matches any usable secret of the key (constant time)."""
    candidates = _candidate_signatures(signature_header)
    matched = False
    for secret in key.secrets:
        expected = expected_signature(secret, msg_id, timestamp, body)
        for candidate in candidates:
            # No early exit: the work done does not depend on which entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def _touch(key: ResolvedKey) -> None:
    now = time.monotonic()
    with _touched_lock:
        last = _touched.get(key.key_id)
        if last is not None and now - last < _TOUCH_EVERY_S:
            return
        _touched[key.key_id] = now
    signing_key_touch(tenant_id=key.tenant_id, key_id=key.key_id)


def authenticate(request: HttpRequest) -> ResolvedKey:
    """The key that signed this Django request, or ApiError (401, 403 suspended) / Unavailable."""
    meta = request.META
    key_id = meta.get("HTTP_X_CODEX_KEY_ID", "")
    msg_id = meta.get("HTTP_WEBHOOK_ID", "")
    timestamp = meta.get("HTTP_WEBHOOK_TIMESTAMP", "")
    signature_header = meta.get("HTTP_WEBHOOK_SIGNATURE", "")
    if not (key_id and msg_id and timestamp and signature_header):
        raise _fail(
            "missing_signature",
            "X-Codex-Key-Id, webhook-id, webhook-timestamp and webhook-signature are required.",
        )
    if any(len(v) > _MAX_HEADER_LEN for v in (key_id, msg_id, timestamp, signature_header)):
        raise _fail("invalid_signature", "Signature headers are too long.")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise _fail("invalid_signature", "webhook-timestamp must be unix seconds.")
    # Integer arithmetic: a timestamp of 309+ digits overflows a float (was a 500).
    if abs(int(time.time()) - int(timestamp)) > TOLERANCE_S:
        raise _fail(
            "timestamp_out_of_tolerance",
            f"webhook-timestamp is more than {TOLERANCE_S} s away from the server clock.",
        )
    try:
        key = signing_key_resolve_cached(key_id)
    except SecretUndecryptable as exc:  # logged with the key id by the resolver
        raise Unavailable(
            "The signing key store is unavailable; retry later.", retry_after=30
        ) from exc
    if key is None:
        raise _fail("unknown_key", "No such signing key.")
    if key.revoked or not key.usable_at(datetime.now(UTC)):
        raise _fail("revoked_key", "This signing key is revoked or expired.")
    if not verify(
        key=key,
        msg_id=msg_id,
        timestamp=timestamp,
        signature_header=signature_header,
        body=request.body,  # the raw bytes exactly as signed
    ):
        raise _fail("invalid_signature", "No signature matches.")
    context.bind_tenant(key.tenant_id)
    if not key.tenant_active:
        metrics.AUTH_FAILURES.labels(code="tenant_suspended").inc()
        raise ApiError("tenant_suspended", "This tenant is suspended.", status_code=403)
    _touch(key)
    return key


class SignatureAuthentication(BaseAuthentication):
    """DRF authenticator over `authenticate` (GET /config)."""

    def authenticate_header(self, request) -> str:
        # Defining this keeps DRF's NotAuthenticated/AuthenticationFailed at 401, not 403.
        return WWW_AUTHENTICATE

    def authenticate(self, request):
        return (None, authenticate(request._request))


class HasSigningKey(BasePermission):
    """Allow only requests that SignatureAuthentication accepted."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ResolvedKey)


class SignedRequestMixin:
    """Mixin for DRF views: signed requests only; `request.auth` is the ResolvedKey."""

    authentication_classes = [SignatureAuthentication]
    permission_classes = [HasSigningKey]
