"""POST /v1/sources/<source_id>/webhooks: a store platform's signed delivery (docs/sources.md).

Answers: 200 accepted or duplicate (a platform retries anything else), 401 bad or missing
signature or a stale timestamp, 404 unknown source, 410 disabled, 413 over 1 MiB, 429 with
Retry-After, 503 when PostgreSQL is unavailable; every error in the one JSON format with the rid.
A correctly signed delivery refused for its content (400) is an ingestion warning of its source;
unverified deliveries are limited per source id and client address before any lookup (guard).
"""

from __future__ import annotations

import time

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from codex import error_codes as codes
from codex.errors import domain_error, domain_error_response
from codex.http import body_size_check, client_address
from ingest import metrics
from ingest.webhooks import services
from ingest.webhooks.shapes import MAX_DELIVERY_BYTES

_OUTCOME_BY_STATUS = {
    400: "rejected",
    401: "unauthorized",
    403: "suspended",
    404: "not_found",
    405: "rejected",
    410: "gone",
    411: "rejected",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}
_ALLOW_POST = {"Allow": "POST"}  # shared, read-only
# Headers the shapes and verifiers read, lower-cased (WSGI gives HTTP_X_SHOPIFY_TOPIC etc.).
_HEADERS = (
    "x-shopify-hmac-sha256",
    "x-shopify-event-id",
    "x-shopify-webhook-id",
    "x-shopify-topic",
    "x-shopify-triggered-at",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


def _headers(request: HttpRequest) -> dict[str, str]:
    meta = request.META
    out = {}
    for name in _HEADERS:
        value = meta.get("HTTP_" + name.upper().replace("-", "_"))
        if value is not None:
            out[name] = value
    return out


@csrf_exempt
def source_webhooks(request: HttpRequest, source_id: str) -> HttpResponse:
    """Verify a delivery with its platform's scheme and store it as one event of the tenant."""
    started = time.perf_counter()
    attempt: services.DeliveryAttempt | None = None
    outcome = "error"
    try:
        body_size_check(request, MAX_DELIVERY_BYTES, "A delivery")
        if request.method != "POST":
            raise codes.METHOD_NOT_ALLOWED.error(
                f'Method "{request.method}" not allowed.', headers=_ALLOW_POST
            )
        # behind CODEX_TRUSTED_PROXIES: the client's own address
        attempt = services.DeliveryAttempt(source_id=source_id, address=client_address(request))
        # The whole body before the source lookup: a client trickling its body cannot hold a
        # looked-up (then offboarded) source past the offboarding fence (docs/lifecycle.md).
        body = request.body
        delivery = services.delivery_receive(attempt, body=body, headers=_headers(request))
        outcome = delivery.status
        response = HttpResponse(
            orjson.dumps({"status": delivery.status, "id": delivery.event_id}),
            content_type="application/json",
            status=200,
        )
    except Exception as exc:
        error = domain_error(exc)  # DomainErrors and a database outage (503)
        if error is None:
            raise  # Django's 500; counted as "error" below
        outcome = _OUTCOME_BY_STATUS.get(error.status_code, "error")
        response = domain_error_response(error)
    finally:
        source = attempt.source if attempt else None
        kind = source.kind if source else "unknown"
        metrics.SOURCE_DELIVERIES.labels(
            tenant=source.tenant_slug if source else "",
            kind=kind,
            source=source.source_id if source else "unknown",
            outcome=outcome,
        ).inc()
        metrics.SOURCE_DELIVERY_DURATION.labels(kind=kind).observe(time.perf_counter() - started)
    return response
