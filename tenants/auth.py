r"""Request signing: an HMAC over the whole request, Standard Webhooks headers, X-Codex-Key-Id.

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
  ``webhook-signature`` (space-separated ``v2,<base64>`` entries) carry an HMAC-SHA256, keyed with
  the base64-decoded secret, over the canonical request (`canonical_request`)::

      v2\n{METHOD}\n{canonical path}\n{canonical query}\n{webhook-id}\n{webhook-timestamp}\n{body}

  so a signature is good for its own method, path, query and body only.
* ``v1,<base64>`` entries (over the Standard Webhooks content
  ``{webhook-id}.{webhook-timestamp}.{body}``, which binds the body alone) count only where the
  caller allows them (``v1_allowed``: POST /v1/events while the tenant's runtime flag
  signatureV1Allowed is on); every accepted one is counted in
  ``codex_auth_signature_v1_total{tenant}``; elsewhere a matching v1 signature is 401
  ``signature_version_refused``.
* Accepted when a listed signature matches a usable secret of the key (constant-time compare),
  the timestamp is within +-300 s of the server clock, and the webhook-id was not used with this
  key before (tenants.replay, shared through Redis; a second use is 401 ``replayed_request``).
  Redis unreachable: the id is not checked and the request is accepted (fail open, like the rate
  limit), counted in ``codex_auth_replay_store_errors_total`` and logged.
* Failures raise ``codex.errors.ApiError`` of a registry entry (codex/error_codes.py): 401 with
  a ``WWW-Authenticate`` header, code one of ``missing_signature``, ``invalid_signature``,
  ``timestamp_out_of_tolerance``, ``unknown_key``, ``revoked_key``, ``signature_version_refused``,
  ``replayed_request``; a correctly signed request of a suspended tenant gets 403
  ``tenant_suspended``. PostgreSQL unreachable during the key lookup (its OperationalError) or a
  secret no key decrypts (SecretUndecryptable) propagate, and the edge answers 503 ``unavailable``
  (codex.errors.domain_error).
* Success returns ``(None, ResolvedKey)``: ``request.user`` is None, ``request.auth`` the key, and
  the tenant is bound to the logging context. Authentication never touches rate-limit counters,
  so a failed request cannot spend a tenant's quota (views rate-limit after authenticating).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.db import DatabaseError
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from codex import context
from codex import error_codes as codes
from codex.errors import ApiError, ErrorCode
from tenants import metrics, replay
from tenants.selectors import ResolvedKey, signing_key_resolve_cached
from tenants.services.keys import signing_keys_touch

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
# last_used_at is informational: a process notes each key at most once a minute and writes the
# noted keys in one statement at most every _TOUCH_FLUSH_S (or once _TOUCH_BATCH are waiting),
# so with thousands of keys in use a request does not pay a write of its own.
_TOUCH_EVERY_S = 60.0
_TOUCH_FLUSH_S = 10.0
_TOUCH_BATCH = 2000
_touched: dict[str, float] = {}
_touch_pending: dict[str, uuid.UUID] = {}
_touch_next_flush = 0.0
_touched_lock = threading.Lock()
_flush_lock = threading.Lock()
logger = logging.getLogger(__name__)
# Every 401 carries this challenge: built once, shared (read-only) by every refusal.
_CHALLENGE = {"WWW-Authenticate": WWW_AUTHENTICATE}
# Which requests may still use a v1 (body-only) signature; None: none may.
V1Policy = Callable[[HttpRequest, ResolvedKey], bool]
# quote() keeps A-Z a-z 0-9 _.-~ and these; the query keeps every visible ASCII byte as sent.
_PATH_SAFE = "/"
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def _fail(entry: ErrorCode, message: str | None = None) -> ApiError:
    metrics.AUTH_FAILURES.labels(code=entry.code).inc()
    return ApiError(entry, message, headers=_CHALLENGE)


def canonical_request(
    *, method: str, path: str, query: bytes, msg_id: str, timestamp: str, body: bytes
) -> bytes | None:
    """The bytes a v2 signature covers, or None when no signature can cover these headers.

    `path` is the path the application routes (Django's `request.path_info`: percent-decoded,
    UTF-8, after any SCRIPT_NAME mount), re-encoded here: its UTF-8 bytes but A-Z a-z 0-9
    - . _ ~ / as %XX. `query` is the query string as sent (bytes outside visible ASCII as %XX).
    Header values come from WSGI as latin-1-decoded text; encoding them back recovers the bytes
    the client signed.
    """
    try:
        id_bytes = msg_id.encode("latin-1")
        head = b"\n".join(
            (
                b"v2",
                method.encode("ascii"),
                quote(path.encode("utf-8"), safe=_PATH_SAFE).encode("ascii"),
                quote(query, safe=_QUERY_SAFE).encode("ascii"),
                id_bytes,
                timestamp.encode("ascii"),
            )
        )
    except UnicodeError:  # not from a real HTTP server: nothing can match it
        return None
    if b"\n" in id_bytes or b"\r" in id_bytes:  # would blur the line structure
        return None
    return head + b"\n" + body


def v1_content(msg_id: str, timestamp: str, body: bytes) -> bytes | None:
    """The bytes a v1 (Standard Webhooks) signature covers: `{id}.{timestamp}.{body}`."""
    try:
        return f"{msg_id}.{timestamp}.".encode("latin-1") + body
    except UnicodeEncodeError:
        return None


def _candidate_signatures(header: str) -> dict[str, list[bytes]]:
    """The decoded v1 and v2 entries of a webhook-signature header; other versions and junk go."""
    found: dict[str, list[bytes]] = {"v1": [], "v2": []}
    for entry in header.split(" ")[:_MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        if version not in found or not value:
            continue
        try:
            found[version].append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _any_match(secrets: tuple[bytes, ...], content: bytes | None, candidates: list[bytes]) -> bool:
    if content is None or not candidates:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, content, hashlib.sha256).digest()
        for candidate in candidates:
            # No early exit: the work done does not depend on which entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def signature_version(
    request: HttpRequest, *, key: ResolvedKey, msg_id: str, timestamp: str, signature_header: str
) -> str | None:
    """The version ("v2", "v1") of a listed signature matching a usable secret, else None."""
    candidates = _candidate_signatures(signature_header)
    body = request.body  # the raw bytes exactly as signed
    meta = request.META
    v2 = canonical_request(
        method=request.method or "",
        path=request.path_info,  # META["PATH_INFO"] is this too: Django rewrites it
        query=get_bytes_from_wsgi(meta, "QUERY_STRING", ""),
        msg_id=msg_id,
        timestamp=timestamp,
        body=body,
    )
    if _any_match(key.secrets, v2, candidates["v2"]):
        return "v2"
    if _any_match(key.secrets, v1_content(msg_id, timestamp, body), candidates["v1"]):
        return "v1"
    return None


def _touch(key: ResolvedKey) -> None:
    now = time.monotonic()
    with _touched_lock:
        last = _touched.get(key.key_id)
        if last is None or now - last >= _TOUCH_EVERY_S:
            if len(_touched) > 200_000:
                _touched.clear()  # bound: at worst one more note per key
            _touched[key.key_id] = now
            _touch_pending[key.key_id] = key.tenant_id
        due = _touch_pending and (now >= _touch_next_flush or len(_touch_pending) >= _TOUCH_BATCH)
    if due:
        touches_flush()


def touches_flush() -> None:
    """Write the noted keys' last_used_at now (one statement); a failure is logged, not raised."""
    global _touch_next_flush
    if not _flush_lock.acquire(blocking=False):
        return  # another thread is writing them
    try:
        with _touched_lock:
            pending = list(_touch_pending.items())
            _touch_pending.clear()
            _touch_next_flush = time.monotonic() + _TOUCH_FLUSH_S
        try:
            signing_keys_touch(keys=[(tenant_id, key_id) for key_id, tenant_id in pending])
        except DatabaseError as exc:
            logger.warning("last_used_at not recorded", extra={"keys": len(pending)}, exc_info=exc)
    finally:
        _flush_lock.release()


def _first_use(key: ResolvedKey, msg_id: str, timestamp: str) -> bool:
    """False when this webhook-id was used with this key before (True if Redis cannot say)."""
    try:
        return replay.webhook_id_claim(
            key_id=key.key_id, msg_id=msg_id, timestamp=int(timestamp), tolerance_s=TOLERANCE_S
        )
    except (RedisError, OSError) as exc:
        metrics.REPLAY_STORE_ERRORS.inc()
        logger.warning("replay check failed; accepting (fail open)", exc_info=exc)
        return True


def authenticate(request: HttpRequest, *, v1_allowed: V1Policy | None = None) -> ResolvedKey:
    """The key that signed this Django request, or ApiError (401, 403 suspended) / 503.

    `v1_allowed(request, key)` says whether a v1 signature may stand for this request; without
    it only v2 signatures are accepted.
    """
    meta = request.META
    key_id = meta.get("HTTP_X_CODEX_KEY_ID", "")
    msg_id = meta.get("HTTP_WEBHOOK_ID", "")
    timestamp = meta.get("HTTP_WEBHOOK_TIMESTAMP", "")
    signature_header = meta.get("HTTP_WEBHOOK_SIGNATURE", "")
    if not (key_id and msg_id and timestamp and signature_header):
        raise _fail(codes.MISSING_SIGNATURE)
    if any(len(v) > _MAX_HEADER_LEN for v in (key_id, msg_id, timestamp, signature_header)):
        raise _fail(codes.INVALID_SIGNATURE, "Signature headers are too long.")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise _fail(codes.INVALID_SIGNATURE, "webhook-timestamp must be unix seconds.")
    # Integer arithmetic: a timestamp of 309+ digits overflows a float (was a 500).
    if abs(int(time.time()) - int(timestamp)) > TOLERANCE_S:
        raise _fail(
            codes.TIMESTAMP_OUT_OF_TOLERANCE,
            f"webhook-timestamp is more than {TOLERANCE_S} s away from the server clock.",
        )
    # The whole body before the key lookup: a client trickling its body cannot hold a
    # looked-up key past a revocation or the offboarding fence (docs/lifecycle.md).
    request.body  # noqa: B018 - read for its effect
    # SecretUndecryptable (logged with the key id by the resolver) is answered 503 unavailable.
    key = signing_key_resolve_cached(key_id)
    if key is None:
        raise _fail(codes.UNKNOWN_KEY)
    if key.revoked or not key.usable_at(datetime.now(UTC)):
        raise _fail(codes.REVOKED_KEY)
    version = signature_version(
        request, key=key, msg_id=msg_id, timestamp=timestamp, signature_header=signature_header
    )
    if version is None:
        raise _fail(codes.INVALID_SIGNATURE)
    context.bind_tenant(key.tenant_id)
    if version == "v1" and (v1_allowed is None or not v1_allowed(request, key)):
        raise _fail(codes.SIGNATURE_VERSION_REFUSED)
    if not _first_use(key, msg_id, timestamp):
        raise _fail(codes.REPLAYED_REQUEST)
    if not key.tenant_active:
        metrics.AUTH_FAILURES.labels(code=codes.TENANT_SUSPENDED.code).inc()
        raise ApiError(codes.TENANT_SUSPENDED)
    if version == "v1":
        metrics.SIGNATURE_V1.labels(tenant=key.tenant_slug).inc()
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
