"""POST /v1/events: signed, rate-limited, idempotent ingest (contract in docs/api.md)."""

from __future__ import annotations

import time

from django.db import InterfaceError, OperationalError
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.errors import ApiError
from flags.metrics import record_sync_response
from ingest import metrics, ratelimit, services
from ingest.auth import SignedRequestMixin, db_unavailable
from ingest.validation import MAX_BODY_BYTES, parse_body

_OUTCOME_BY_STATUS = {
    202: "accepted",
    400: "rejected",
    401: "unauthorized",
    403: "unauthorized",
    413: "rejected",
    415: "rejected",
    422: "conflict",
    429: "rate_limited",
    503: "unavailable",
}


class EventsView(SignedRequestMixin, APIView):
    """Accept one event or a batch of up to 500 for the signing key's tenant."""

    parser_classes = []  # the raw body is parsed here, strictly (validation.loads)

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        self.outcome: str | None = None
        try:
            response = super().dispatch(request, *args, **kwargs)
        except Exception:
            # Escaping exceptions become Django's 500: count them here, or they vanish from
            # the latency histogram and the outcome counter.
            metrics.REQUEST_DURATION.observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(outcome="error").inc()
            raise
        metrics.REQUEST_DURATION.observe(time.perf_counter() - started)
        outcome = self.outcome or _OUTCOME_BY_STATUS.get(response.status_code, "error")
        metrics.REQUESTS.labels(outcome=outcome).inc()
        key = getattr(getattr(self, "request", None), "_auth", None)  # never re-authenticate
        record_sync_response(request, response, getattr(key, "tenant_slug", None))
        return response

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized body before reading it or spending a key lookup on it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise ApiError(
                "payload_too_large",
                f"The body may be at most {MAX_BODY_BYTES} bytes.",
                status_code=413,
            )
        super().initial(request, *args, **kwargs)

    def post(self, request):
        key = request.auth
        decision = ratelimit.check(
            tenant_id=key.tenant_id, limit=ratelimit.tenant_rate(key.tenant_id)
        )
        if decision.limited:
            metrics.RATELIMIT_REJECTIONS.labels(tenant=key.tenant_slug).inc()
            raise ApiError(
                "rate_limited",
                f"More than {decision.limit} requests per second for this tenant.",
                status_code=429,
                headers=decision.headers(),
            )
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(
                "unsupported_media_type",
                "Content-Type must be application/json.",
                status_code=415,
                headers=decision.headers(),
            )
        body = request.body
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(
                "payload_too_large",
                f"The body may be at most {MAX_BODY_BYTES} bytes.",
                status_code=413,
            )
        parsed = parse_body(body)
        try:
            results = services.events_ingest(
                tenant_id=key.tenant_id, key_id=key.key_id, items=parsed.items
            )
        except (OperationalError, InterfaceError) as exc:
            raise db_unavailable() from exc
        for result in results:
            metrics.EVENTS.labels(
                tenant=key.tenant_slug,
                source=metrics.source_label(key.tenant_slug, result.source or "invalid"),
                outcome=result.status,
            ).inc()
        headers = decision.headers()
        if parsed.batch:
            self.outcome = "batch"
            return self._batch_response(results, headers)
        result = results[0]
        if result.status == "conflict":
            raise ApiError(
                "idempotency_key_reused",
                "This idempotency_key was already used for different content.",
                status_code=422,
                headers=headers,
            )
        status_code = 202 if result.status == "accepted" else 200
        self.outcome = result.status
        return Response({"status": result.status, "id": result.id}, status_code, headers=headers)

    @staticmethod
    def _batch_response(results, headers) -> Response:
        counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        for result in results:
            counts[result.status] += 1
        body = {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "conflicts": counts["conflict"],
            "rejected": counts["rejected"],
            "results": [
                {
                    "idempotency_key": r.idempotency_key,
                    "status": r.status,
                    "id": r.id,
                    "error": r.error,
                }
                for r in results
            ],
        }
        return Response(body, 200, headers=headers)
