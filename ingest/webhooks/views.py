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

from codex import context
from codex import error_codes as codes
from codex.errors import DomainError, domain_error, domain_error_response
from codex.http import body_size_check, client_address
from ingest import metrics
from ingest.webhooks import guard, services
from ingest.webhooks.shapes import MAX_DELIVERY_BYTES
from tenants.selectors import ResolvedSource

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
    source: ResolvedSource | None = None
    outcome = "error"
    try:
        body_size_check(request, MAX_DELIVERY_BYTES, "A delivery")
        if request.method != "POST":
            raise codes.METHOD_NOT_ALLOWED.error(
                f'Method "{request.method}" not allowed.', headers=_ALLOW_POST
            )
        address = client_address(request)  # behind CODEX_TRUSTED_PROXIES: the client's own
        # The whole body before the source lookup: a client trickling its body cannot hold a
        # looked-up (then offboarded) source past the offboarding fence (docs/lifecycle.md).
        body = request.body
        # Before the lookup: a flood of unverified deliveries spends no lookup or decrypt.
        guard.unverified_check(source_id=source_id, address=address)
        try:
            source = services.source_for_delivery(source_id)
        except DomainError as exc:
            if exc.entry is codes.UNKNOWN_SOURCE:
                guard.unverified_count(source_id=source_id, address=address)
            raise
        context.bind_tenant(source.tenant_id)
        headers = _headers(request)
        try:
            services.delivery_verify(source=source, body=body, headers=headers)
        except DomainError as exc:
            metrics.SOURCE_SIGNATURE_FAILURES.labels(
                tenant=source.tenant_slug,
                kind=source.kind,
                source=source.source_id,
                code=exc.code,
            ).inc()
            guard.unverified_count(source_id=source_id, address=address)
            raise
        delivery = services.delivery_seen(source=source, body=body)
        if delivery is None:
            services.delivery_rate_limit(source=source)
            try:
                item = services.delivery_event(source=source, body=body, headers=headers)
            except DomainError as exc:  # correctly signed, refused for its content: a trace
                services.delivery_refused_record(
                    source=source, body=body, headers=headers, error=exc
                )
                raise
            delivery = services.delivery_store(source=source, item=item)
            services.delivery_seen_mark(source=source, body=body, delivery=delivery)
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
        kind = source.kind if source else "unknown"
        metrics.SOURCE_DELIVERIES.labels(
            tenant=source.tenant_slug if source else "",
            kind=kind,
            source=source.source_id if source else "unknown",
            outcome=outcome,
        ).inc()
        metrics.SOURCE_DELIVERY_DURATION.labels(kind=kind).observe(time.perf_counter() - started)
    return response
