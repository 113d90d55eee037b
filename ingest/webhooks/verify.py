"""Each platform's own signature over the raw body (pure functions, no database)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

import stripe
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from codex import error_codes as codes
from codex.errors import DomainError, ErrorCode

TOLERANCE_S = 300  # Stripe's and Standard Webhooks' own default
_MAX_HEADER_LEN = 4096
WWW_AUTHENTICATE = 'Codex-Source-Signature realm="codex"'
_CHALLENGE = {"WWW-Authenticate": WWW_AUTHENTICATE}  # shared, read-only


class SignatureRejected(DomainError):
    """The delivery is not signed by the source: a 401 entry, with the source challenge."""

    def __init__(self, entry: ErrorCode, message: str | None = None):
        super().__init__(entry, message, headers=_CHALLENGE)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "")
    if len(value) > _MAX_HEADER_LEN:
        raise SignatureRejected(codes.INVALID_SIGNATURE, f"{name} is too long.")
    return value


def verify_shopify(*, body: bytes, headers: Mapping[str, str], secrets: tuple[str, ...]) -> None:
    """X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, raw body)), compared in constant time."""
    given = _header(headers, "x-shopify-hmac-sha256")
    if not given:
        raise SignatureRejected(codes.MISSING_SIGNATURE, "X-Shopify-Hmac-Sha256 is required.")
    try:
        candidate = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        candidate = b""
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, candidate)  # no early exit
    if not matched:
        raise SignatureRejected(codes.INVALID_SIGNATURE, "X-Shopify-Hmac-Sha256 does not match.")


def verify_stripe(*, body: bytes, headers: Mapping[str, str], secrets: tuple[str, ...]) -> None:
    """Stripe-Signature (t=, v1=...) checked by the stripe library, 300 s tolerance."""
    header = _header(headers, "stripe-signature")
    if not header:
        raise SignatureRejected(codes.MISSING_SIGNATURE, "Stripe-Signature is required.")
    try:
        timestamp = int(next(p[2:] for p in header.split(",") if p.startswith("t=")))
    except (StopIteration, ValueError):
        raise SignatureRejected(codes.INVALID_SIGNATURE, "Stripe-Signature has no t=.") from None
    matched = False
    for secret in secrets:
        try:
            # tolerance=None: the age is checked below once, so a stale delivery is told apart
            # from a wrong signature.
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
            matched = True
        except (stripe.SignatureVerificationError, ValueError, TypeError):
            # ValueError: a body that is not UTF-8; TypeError: non-ASCII signature text.
            continue
    if not matched:
        raise SignatureRejected(codes.INVALID_SIGNATURE, "No Stripe-Signature v1 entry matches.")
    if abs(time.time() - timestamp) > TOLERANCE_S:
        raise SignatureRejected(
            codes.TIMESTAMP_OUT_OF_TOLERANCE,
            f"Stripe-Signature t= is more than {TOLERANCE_S} s away from the server clock.",
        )


def verify_standard(*, body: bytes, headers: Mapping[str, str], secrets: tuple[str, ...]) -> None:
    """webhook-id/-timestamp/-signature checked by the standardwebhooks library (5 min)."""
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    wanted = {n: _header(headers, n) for n in names}
    if not all(wanted.values()):
        raise SignatureRejected(
            codes.MISSING_SIGNATURE,
            "webhook-id, webhook-timestamp and webhook-signature are required.",
        )
    stamp = wanted["webhook-timestamp"]
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureRejected(codes.INVALID_SIGNATURE, "webhook-timestamp must be unix seconds.")
    if abs(int(time.time()) - int(stamp)) > TOLERANCE_S:
        raise SignatureRejected(
            codes.TIMESTAMP_OUT_OF_TOLERANCE,
            f"webhook-timestamp is more than {TOLERANCE_S} s away from the server clock.",
        )
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
            return
        except (WebhookVerificationError, ValueError, TypeError, EmptyWebhookSecretError):
            # ValueError: malformed signature entries or a body that is not UTF-8;
            # EmptyWebhookSecretError: a source stored before secrets were checked (whsec_).
            continue
    raise SignatureRejected(codes.INVALID_SIGNATURE, "No webhook-signature v1 entry matches.")


VERIFIERS = {"shopify": verify_shopify, "stripe": verify_stripe, "standard": verify_standard}
