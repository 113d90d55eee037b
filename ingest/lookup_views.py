"""GET /v1/events/<idempotency_key>: what happened to one of the caller's events."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from codex import error_codes as codes
from codex.throttle import SignedReadThrottle
from flags.selectors import effective_flags_cached
from ingest.lookup import event_status_get
from ingest.openapi import (
    AUTH_ERRORS,
    LOOKUP_PARAMETERS,
    EventStatusSerializer,
    error_doc,
)
from tenants.auth import SignedRequestMixin


def _storable_key(key: str) -> bool:
    # A key the ledger could never hold (NUL, lone surrogates, too long) is simply not found:
    # sending it to PostgreSQL would be an error, not an answer.
    if not 1 <= len(key) <= 255 or "\x00" in key:
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LookupThrottle(SignedReadThrottle):
    """GET /v1/events/<key>: lookupRatePerSec requests per second per signing key (a flag)."""

    group = "lookup"
    what = "event lookups"

    def limit_for(self, key) -> int:
        return int(effective_flags_cached(tenant_id=key.tenant_id)["lookupRatePerSec"])


class EventLookupView(SignedRequestMixin, APIView):
    """The signing key's tenant's event with this idempotency key and its status."""

    throttle_classes = [LookupThrottle]

    @extend_schema(
        operation_id="events_lookup",
        summary="What happened to one event",
        description=(
            "The status is `accepted` (stored, enrichment due), `enriched`, `dead_lettered` "
            "(with the stage and error class that gave up; an operator replay can still enrich "
            "it) or `erased`. Another tenant's keys are never found."
        ),
        parameters=LOOKUP_PARAMETERS,
        responses={
            200: EventStatusSerializer,
            **AUTH_ERRORS,
            404: error_doc("Your tenant has no event with this key.", codes.NOT_FOUND),
            405: error_doc("Only GET (after authentication).", codes.METHOD_NOT_ALLOWED),
            429: error_doc(
                "More lookups per second than the key's lookupRatePerSec; wait Retry-After.",
                codes.RATE_LIMITED,
            ),
        },
        tags=["events"],
    )
    def get(self, request, idempotency_key: str):
        key = request.auth
        status = None
        if _storable_key(idempotency_key):
            status = event_status_get(tenant_id=key.tenant_id, idempotency_key=idempotency_key)
        if status is None:
            raise codes.NOT_FOUND.error("No event with this idempotency_key.")
        return Response(EventStatusSerializer(status).data)
