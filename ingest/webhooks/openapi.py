"""The OpenAPI description of POST /v1/sources/{source_id}/webhooks (schema only, never routed)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from codex import error_codes as codes
from ingest.openapi import SingleResultSerializer, error_doc

SOURCE_PATH = "/v1/sources/{source_id}/webhooks"


def _header(name: str, text: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.HEADER, required=False, description=text)


SOURCE_HEADERS = [
    _header("X-Shopify-Hmac-Sha256", "shopify: base64 HMAC-SHA256(app secret, raw body)."),
    _header("X-Shopify-Topic", "shopify: e.g. orders/create; the type is shopify.orders.create."),
    _header("X-Shopify-Event-Id", "shopify: kept as payload.event_id; unsigned, never the key."),
    _header("X-Shopify-Webhook-Id", "shopify: payload.event_id without X-Shopify-Event-Id."),
    _header("X-Shopify-Triggered-At", "shopify: occurred_at (else the receipt time)."),
    _header("X-Shopify-Shop-Domain", "shopify: kept with the event."),
    _header("Stripe-Signature", "stripe: t=<unix>,v1=<hex HMAC-SHA256>; t within 300 s."),
    _header("webhook-id", "standard: the idempotency key, within the source."),
    _header("webhook-timestamp", "standard: unix seconds, within 300 s."),
    _header("webhook-signature", "standard: v1,<base64 HMAC-SHA256> entries."),
]

SOURCE_RESPONSES = {
    200: OpenApiResponse(
        SingleResultSerializer,
        description=(
            "Stored now (`accepted`) or already stored (`duplicate`, the original id): 200 for "
            "both, so the platform stops retrying."
        ),
        examples=[OpenApiExample("accepted", {"status": "accepted", "id": 7})],
    ),
    400: error_doc(
        "Correctly signed, but not JSON or not what the kind needs.",
        codes.MALFORMED_JSON,
        codes.INVALID_DELIVERY,
    ),
    401: error_doc(
        "No or a wrong signature, or a stale timestamp.",
        codes.MISSING_SIGNATURE,
        codes.INVALID_SIGNATURE,
        codes.TIMESTAMP_OUT_OF_TOLERANCE,
    ),
    403: error_doc("The tenant is suspended.", codes.TENANT_SUSPENDED),
    404: error_doc("No such source.", codes.UNKNOWN_SOURCE),
    405: error_doc("Only POST.", codes.METHOD_NOT_ALLOWED),
    410: error_doc("The source is disabled.", codes.SOURCE_DISABLED),
    411: error_doc("A chunked body without Content-Length.", codes.LENGTH_REQUIRED),
    413: error_doc("The body is larger than 1 MiB.", codes.PAYLOAD_TOO_LARGE),
    429: error_doc(
        "Over the source's sourceRatePerSec or the tenant's ingestRatePerSec, or too many "
        "unverified deliveries for this source id or from this address; wait Retry-After.",
        codes.RATE_LIMITED,
    ),
    503: error_doc("PostgreSQL is unreachable; retry after Retry-After.", codes.UNAVAILABLE),
}


class SourceWebhooksDocView(APIView):
    """Documentation only: describes ingest.webhooks.views.source_webhooks."""

    authentication_classes: list = []

    @extend_schema(
        operation_id="source_webhook_deliver",
        summary="A store platform's webhook delivery (Shopify, Stripe, Standard Webhooks)",
        description=(
            "Signed with the platform's own scheme over the raw body (no X-Codex-Key-Id); stored "
            "as one event of the source's tenant through the idempotent /v1/events write. "
            "Guide: docs/sources.md."
        ),
        parameters=[
            OpenApiParameter(
                "source_id",
                str,
                OpenApiParameter.PATH,
                description="The source's public id, src_<tenant hex>_<random>.",
            ),
            *SOURCE_HEADERS,
        ],
        request={"application/json": {"type": "object", "additionalProperties": True}},
        responses=SOURCE_RESPONSES,
        auth=[],
        tags=["sources"],
    )
    def post(self, request, source_id):  # pragma: no cover - never routed
        raise NotImplementedError
