"""POST /v1/events: signed, rate-limited, idempotent ingest (contract in docs/api.md).

A plain Django view rather than a DRF APIView: on this path DRF's request wrapper, content
negotiation and renderer cost about a sixth of a request's CPU (py-spy, docs/performance.md) and
bought nothing; errors keep the one format (codex.errors), answers are encoded with orjson.
"""

from __future__ import annotations

import time
from collections import Counter

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from codex import error_codes as codes
from codex.errors import DomainError, domain_error, domain_error_response
from codex.http import body_size_check
from flags.selectors import effective_flags_cached
from ingest import ingest_warnings, metrics, ratelimit
from ingest.services.accept import CONFLICT_MESSAGE, events_ingest
from ingest.validation import MAX_BODY_BYTES, parse_body
from tenants.auth import authenticate
from tenants.selectors import ResolvedKey

_OUTCOME_BY_STATUS = {
    202: "accepted",
    400: "rejected",
    401: "unauthorized",
    403: "unauthorized",
    405: "rejected",
    411: "rejected",
    413: "rejected",
    415: "rejected",
    422: "conflict",
    429: "rate_limited",
    503: "unavailable",
}


# Refusals of an authenticated tenant's input that become ingestion warnings (429 and 503 are
# not about the input; before authentication nothing says whose input it was).
_WARNED_STATUSES = frozenset({400, 405, 411, 413, 415, 422})
_ALLOW_POST = {"Allow": "POST"}  # shared, read-only


def v1_signature_allowed(request: HttpRequest, key: ResolvedKey) -> bool:
    """A v1 (body-only) signature stands for a POST while the tenant's signatureV1Allowed is on."""
    if request.method != "POST":
        return False
    return bool(effective_flags_cached(tenant_id=key.tenant_id)["signatureV1Allowed"])  # <= 3 s old


def _body_subject(body: bytes) -> str:
    """The subject_id of a refused single-event body, when it parses and names one."""
    try:
        return ingest_warnings.subject_of(orjson.loads(body)) if body else ""
    except orjson.JSONDecodeError:
        return ""


def _warn_request(request: HttpRequest, key: ResolvedKey, error: DomainError) -> None:
    body = getattr(request, "_body", b"")  # only what was read: an oversized body never is
    ingest_warnings.ingest_warnings_record(
        tenant_id=key.tenant_id,
        tenant_slug=key.tenant_slug,
        key_id=key.key_id,
        entries=[
            ingest_warnings.WarningEntry(
                code=error.code,
                message=error.message,
                item=ingest_warnings.body_text(body),
                subject_id=_body_subject(body),
            )
        ],
    )


def _warn_items(key: ResolvedKey, items, results) -> None:
    entries = []
    for item, result in zip(items, results, strict=True):
        if result.status == "rejected":
            raw = ingest_warnings.item_text(item.raw)
            subject = ingest_warnings.subject_of(item.raw)
        elif result.status == "conflict":
            subject = item.event.subject_id or ""
            raw = ingest_warnings.item_text(
                {
                    "idempotency_key": item.idempotency_key,
                    "type": item.event.type,
                    "occurred_at": item.event.occurred_at.isoformat(),
                    "source": item.event.source,
                    "payload": orjson.Fragment(item.event.payload_json),
                }
            )
        else:
            continue
        error = result.error or {}
        entries.append(
            ingest_warnings.WarningEntry(
                code=error.get("code", result.status),
                message=error.get("message", ""),
                item=raw,
                idempotency_key=item.idempotency_key or "",
                subject_id=subject,
            )
        )
    ingest_warnings.ingest_warnings_record(
        tenant_id=key.tenant_id, tenant_slug=key.tenant_slug, key_id=key.key_id, entries=entries
    )


def _json(body: dict, status: int, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), content_type="application/json", status=status)
    for name, value in headers.items():
        response[name] = value
    response.data = body  # what metrics.record_sync_response classifies
    return response


@csrf_exempt
def events(request: HttpRequest) -> HttpResponse:
    """Accept one event or a batch of up to 500 for the signing key's tenant."""
    started = time.perf_counter()
    key: ResolvedKey | None = None
    outcome: str | None = None
    try:
        # Refuse an oversized body before reading it or spending a key lookup on it.
        body_size_check(request, MAX_BODY_BYTES)
        # Before the method: an unsigned GET is a 401, as ever.
        key = authenticate(request, v1_allowed=v1_signature_allowed)
        if request.method != "POST":
            raise codes.METHOD_NOT_ALLOWED.error(
                f'Method "{request.method}" not allowed.', headers=_ALLOW_POST
            )
        response, outcome = _ingest(request, key)
    except Exception as exc:
        error = domain_error(exc)  # DomainErrors and a database outage (503)
        if error is None:
            # Escaping exceptions become Django's 500: count them here, or they vanish from the
            # latency histogram and the outcome counter.
            metrics.REQUEST_DURATION.observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(outcome="error").inc()
            raise
        response = domain_error_response(error)
        if key is not None and error.status_code in _WARNED_STATUSES:
            _warn_request(request, key, error)
    metrics.REQUEST_DURATION.observe(time.perf_counter() - started)
    metrics.REQUESTS.labels(
        outcome=outcome or _OUTCOME_BY_STATUS.get(response.status_code, "error")
    ).inc()
    metrics.record_sync_response(request, response, key.tenant_slug if key else None)
    return response


def _ingest(request: HttpRequest, key: ResolvedKey) -> tuple[HttpResponse, str]:
    decision = ratelimit.check(tenant_id=key.tenant_id, limit=ratelimit.tenant_rate(key.tenant_id))
    if decision.limited:
        metrics.RATELIMIT_REJECTIONS.labels(tenant=key.tenant_slug).inc()
        raise codes.RATE_LIMITED.error(
            f"More than {decision.limit} requests per second for this tenant.",
            headers=decision.headers(),  # Retry-After and the RateLimit headers of the decision
        )
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise codes.UNSUPPORTED_MEDIA_TYPE.error(headers=decision.headers())
    parsed = parse_body(request.body)
    results = events_ingest(tenant_id=key.tenant_id, key_id=key.key_id, items=parsed.items)
    counted = Counter((r.source or "invalid", r.status) for r in results)  # one inc per series
    for (source, status), n in counted.items():
        metrics.EVENTS.labels(
            tenant=key.tenant_slug,
            source=metrics.source_label(key.tenant_slug, source),
            outcome=status,
        ).inc(n)
    headers = decision.headers()
    if parsed.batch:
        response = _json(_batch_body(results), 200, headers)
        if counted_refusals(counted):
            _warn_items(key, parsed.items, results)
        return response, "batch"
    result = results[0]
    if result.status == "conflict":
        raise codes.IDEMPOTENCY_KEY_REUSED.error(CONFLICT_MESSAGE, headers=headers)
    status_code = 202 if result.status == "accepted" else 200
    return _json({"status": result.status, "id": result.id}, status_code, headers), result.status


def counted_refusals(counted: Counter) -> bool:
    """True when a batch had rejected or conflicting items (the accepted path skips the rest)."""
    return any(status in ("rejected", "conflict") for _source, status in counted)


def _batch_body(results) -> dict:
    counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
    for result in results:
        counts[result.status] += 1
    return {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "conflicts": counts["conflict"],
        "rejected": counts["rejected"],
        "results": [
            {"idempotency_key": r.idempotency_key, "status": r.status, "id": r.id, "error": r.error}
            for r in results
        ],
    }
