"""The OpenAPI 3 description of the public API (drf-spectacular): components, hooks, docs view.

`POST /v1/events` is a plain Django view (the hot path skips DRF, docs/performance.md), so the
generator cannot see it: `add_events_endpoint` (a preprocessing hook) adds `EventsDocView`, a
DRF view that exists only to carry the operation's description and is never routed. The real
view answers; tests/ingest/test_openapi.py and the schemathesis run check that they agree.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.views import APIView

from codex import error_codes as codes
from ingest.lookup import STATUSES
from ingest.validation import MAX_BATCH, MAX_PAYLOAD_BYTES
from tenants.auth import SignatureAuthentication

SCHEMA_PATHS = ("/v1/events", "/v1/events/{idempotency_key}", "/config")

# --- components ----------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    # close_objects makes it a $ref to the ErrorCode enum: the registry's API codes.
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="For people; wording may change.")
    rid = serializers.CharField(allow_null=True, help_text="The request id (X-Request-ID).")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class EventSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField(
        min_length=1,
        max_length=255,
        help_text="Unique per tenant, forever. No NUL characters.",
    )
    type = serializers.RegexField(r"^[a-z0-9_.:-]{1,100}$", max_length=100)
    occurred_at = serializers.DateTimeField(
        help_text="RFC 3339 date-time with an offset (Z or +hh:mm)."
    )
    source = serializers.CharField(
        required=False,
        min_length=1,
        max_length=64,
        default="sdk",
        help_text="Printable, 1-64 characters.",
    )
    payload = serializers.DictField(
        required=False,
        help_text=(
            f"A JSON object, at most {MAX_PAYLOAD_BYTES} bytes serialized and 64 levels deep."
        ),
    )
    subject_id = serializers.CharField(
        required=False,
        allow_null=True,
        min_length=1,
        max_length=255,
        help_text=(
            "Who the event is about (a customer or person id), 1-255 characters, no NUL: what "
            "an erasure request removes by. Part of the content (same key, other subject: a "
            "conflict)."
        ),
    )


class BatchSerializer(serializers.Serializer):
    events = EventSerializer(
        many=True,
        min_length=1,
        max_length=MAX_BATCH,
        help_text=(
            "Invalid events are rejected one by one (their result says why); the valid ones "
            "are stored."
        ),
    )


class SingleResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    id = serializers.IntegerField(help_text="The ledger id of the event.")


class ItemErrorSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[codes.INVALID_EVENT.code, codes.IDEMPOTENCY_KEY_REUSED.code]
    )
    message = serializers.CharField()


class BatchItemResultSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "conflict", "rejected"])
    id = serializers.IntegerField(allow_null=True)
    error = ItemErrorSerializer(allow_null=True)


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(min_value=0)
    duplicates = serializers.IntegerField(min_value=0)
    conflicts = serializers.IntegerField(min_value=0)
    rejected = serializers.IntegerField(min_value=0)
    results = BatchItemResultSerializer(many=True, help_text="In request order.")


class DeadLetterInfoSerializer(serializers.Serializer):
    stage = serializers.CharField(help_text="The stage that gave up, e.g. enrich.")
    error_class = serializers.CharField()
    attempts = serializers.IntegerField(min_value=0)
    failed_at = serializers.DateTimeField(help_text="Its last failure.")


class EventStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    type = serializers.CharField()
    source = serializers.CharField()
    status = serializers.ChoiceField(choices=list(STATUSES))
    received_at = serializers.DateTimeField()
    enriched_at = serializers.DateTimeField(allow_null=True)
    dead_letter = DeadLetterInfoSerializer(
        allow_null=True, help_text="Set while the status is dead_lettered."
    )


class ConfigSerializer(serializers.Serializer):
    syncEnabled = serializers.BooleanField()
    minIntervalSec = serializers.IntegerField(min_value=5, max_value=86400)
    retryCap = serializers.IntegerField(min_value=0, max_value=10)


# --- the signing headers as a security scheme ----------------------------------------------

SIGNING_HEADERS = {
    "codexKeyId": ("X-Codex-Key-Id", "Your key id, ck_<tenant hex>_<random>."),
    "webhookId": (
        "webhook-id",
        "A new id for every request (every retry too), e.g. msg_<uuid hex>: each is accepted once "
        "per key.",
    ),
    "webhookTimestamp": ("webhook-timestamp", "Unix seconds, within 300 s of the server."),
    "webhookSignature": (
        "webhook-signature",
        "Space-separated v2,<base64 HMAC-SHA256> entries, keyed with the base64 after whsec_, "
        "over 'v2\\n{METHOD}\\n{path}\\n{query}\\n{webhook-id}\\n{webhook-timestamp}\\n' + the "
        "body (docs/api.md). v1 (Standard Webhooks, the body only): POST /v1/events only, while "
        "the tenant's signatureV1Allowed is on.",
    ),
}


class SignatureScheme(OpenApiAuthenticationExtension):
    """Standard Webhooks signing plus X-Codex-Key-Id: four headers, all required together."""

    target_class = SignatureAuthentication
    name = list(SIGNING_HEADERS)

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": header, "description": text}
            for header, text in SIGNING_HEADERS.values()
        ]


# --- operations ----------------------------------------------------------------------------

_RATE_HEADERS = {
    "RateLimit-Policy": 'The tenant\'s policy, e.g. `"tenant";q=50;w=1`.',
    "RateLimit": 'Remaining in this window, e.g. `"tenant";r=12;t=1`.',
}


def error_doc(description: str, *entries: codes.ErrorCode) -> OpenApiResponse:
    """An error answer of these registry entries (each must answer with the documented status)."""
    listed = ", ".join(f"`{entry.code}`" for entry in entries)
    return OpenApiResponse(ErrorSerializer, description=f"{description} Codes: {listed}.")


ERROR_CODE_SCHEMA = {
    "type": "string",
    "enum": codes.api_codes(),
    "description": (
        "Stable, machine-readable error code (codex/error_codes.py; docs/api.md, Errors, says "
        "when each is answered)."
    ),
}


AUTH_ERRORS = {
    400: error_doc(
        "The HTTP request could not be understood (a bad Host, say).", codes.BAD_REQUEST
    ),
    401: error_doc(
        "Not signed, the signature does not verify for this request, or its webhook-id was used "
        "before (no quota spent).",
        codes.MISSING_SIGNATURE,
        codes.INVALID_SIGNATURE,
        codes.TIMESTAMP_OUT_OF_TOLERANCE,
        codes.UNKNOWN_KEY,
        codes.REVOKED_KEY,
        codes.REPLAYED_REQUEST,
        codes.SIGNATURE_VERSION_REFUSED,
    ),
    403: error_doc("Correctly signed, but the tenant is suspended.", codes.TENANT_SUSPENDED),
    503: error_doc(
        "PostgreSQL (or the key store) is unreachable; retry after Retry-After.", codes.UNAVAILABLE
    ),
}

EVENTS_RESPONSES = {
    202: OpenApiResponse(
        SingleResultSerializer,
        description="One event, new: stored in the ledger before this answer, enrichment due.",
        examples=[OpenApiExample("accepted", {"status": "accepted", "id": 123})],
    ),
    200: OpenApiResponse(
        PolymorphicProxySerializer(
            component_name="EventsOk",
            serializers=[SingleResultSerializer, BatchResultSerializer],
            resource_type_field_name=None,
        ),
        description=(
            "One event whose key exists with the same content (`duplicate`, the original id), "
            "or a batch: per-position results in request order."
        ),
    ),
    **AUTH_ERRORS,
    400: error_doc(
        "The body is not strict JSON, or has the wrong shape, or the single event is invalid "
        "(the message names the field); or the HTTP request could not be understood.",
        codes.MALFORMED_JSON,
        codes.INVALID_REQUEST,
        codes.BAD_REQUEST,
    ),
    405: error_doc("Only POST (after authentication).", codes.METHOD_NOT_ALLOWED),
    411: error_doc("A chunked body without Content-Length.", codes.LENGTH_REQUIRED),
    413: error_doc("The body is larger than 1 MiB.", codes.PAYLOAD_TOO_LARGE),
    415: error_doc("Content-Type is not application/json.", codes.UNSUPPORTED_MEDIA_TYPE),
    422: error_doc(
        "The single event's key exists with different content.", codes.IDEMPOTENCY_KEY_REUSED
    ),
    429: error_doc(
        "More requests per second than the tenant's ingestRatePerSec; wait Retry-After.",
        codes.RATE_LIMITED,
    ),
}


class EventsDocView(APIView):
    """Documentation only: describes ingest.views.events (never routed, never answers)."""

    authentication_classes = [SignatureAuthentication]

    @extend_schema(
        operation_id="events_ingest",
        summary="Send one event or a batch of up to 500",
        description=(
            "Signed (Standard Webhooks + X-Codex-Key-Id). Idempotent per tenant and key: "
            "a retry answers `duplicate` with the original id. Every answer carries "
            "X-Request-ID and the RateLimit headers (docs/api.md)."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventsRequest",
            serializers=[EventSerializer, BatchSerializer],
            resource_type_field_name=None,
        ),
        responses=EVENTS_RESPONSES,
        tags=["events"],
    )
    def post(self, request):  # pragma: no cover - never routed
        raise NotImplementedError


_HTTP_400_NOTE = (
    " A request that is not valid HTTP (a control character in a header value, say) is refused "
    "by the HTTP server before the application, with a text/html page."
)


def close_objects(result, generator, request, public):
    """Postprocessing hook: the request shapes the server holds to, beyond the serializers.

    Request objects admit no unknown keys (the server refuses them); a batch admits any item
    (each is answered on its own). An error's code is the registry's ErrorCode enum.
    """
    schemas = result.get("components", {}).get("schemas", {})
    if "ErrorDetail" in schemas:
        # One enum of every code an answer can carry, straight from the registry.
        schemas["ErrorCode"] = dict(ERROR_CODE_SCHEMA)
        schemas["ErrorDetail"]["properties"]["code"] = {"$ref": "#/components/schemas/ErrorCode"}
    for name in ("Event", "Batch"):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    if "Batch" in schemas:
        events = schemas["Batch"]["properties"]["events"]
        events.update(minItems=1, maxItems=MAX_BATCH)
        # Each item is checked on its own: an invalid one is `rejected` in its result and the
        # batch still answers 200, so the request admits any item (an Event is what is stored).
        events["items"] = {"anyOf": [events["items"], {}]}
    lookup = result["paths"].get("/v1/events/{idempotency_key}", {}).get("get")
    if lookup:
        for parameter in lookup["parameters"]:
            if parameter["name"] == "idempotency_key":
                parameter["schema"].update(minLength=1, maxLength=255)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            bad_request = operation.get("responses", {}).get("400")
            if bad_request is not None:
                # gunicorn refuses malformed HTTP itself (a control character in a header value,
                # found by schemathesis), before the application: its page is HTML, not our JSON.
                bad_request.setdefault("content", {})["text/html"] = {"schema": {"type": "string"}}
                bad_request["description"] += _HTTP_400_NOTE
    if "Event" in schemas:
        # No NUL (PostgreSQL cannot store it); the server's own rules are in the descriptions.
        schemas["Event"]["properties"]["idempotency_key"]["pattern"] = "^[^\\x00]+$"
        schemas["Event"]["properties"]["source"]["pattern"] = "^[ -~]+$"
        schemas["Event"]["properties"]["subject_id"]["pattern"] = "^[^\\x00]+$"
    return result


LOOKUP_PARAMETERS = [
    OpenApiParameter(
        "idempotency_key",
        str,
        OpenApiParameter.PATH,
        description="The key the event was sent with (URL-encoded).",
    )
]


class ConfigViewSchema(OpenApiViewExtension):
    """GET /config (flags.views.ConfigView), described here with the rest of the public API."""

    target_class = "flags.views.ConfigView"

    def view_replacement(self):
        class Described(self.target_class):
            @extend_schema(
                operation_id="config_read",
                summary="The runtime flags in force for your tenant",
                description=(
                    "Signed like every request (sign the empty body). Answers a strong ETag; "
                    "send it back in If-None-Match and get 304 while nothing changed."
                ),
                parameters=[
                    OpenApiParameter(
                        "If-None-Match",
                        str,
                        OpenApiParameter.HEADER,
                        required=False,
                        description="An ETag from an earlier answer (or a list of them, or *).",
                    ),
                    OpenApiParameter(
                        "ETag",
                        str,
                        OpenApiParameter.HEADER,
                        response=[200, 304],
                        description="Strong tag of the document (same values, same tag).",
                    ),
                ],
                responses={
                    200: OpenApiResponse(
                        ConfigSerializer,
                        description="The flags, with ETag and Cache-Control.",
                        examples=[
                            OpenApiExample(
                                "defaults",
                                {"syncEnabled": True, "minIntervalSec": 900, "retryCap": 3},
                            )
                        ],
                    ),
                    304: OpenApiResponse(description="Not modified: your ETag still holds."),
                    **AUTH_ERRORS,
                    405: error_doc("Only GET (after authentication).", codes.METHOD_NOT_ALLOWED),
                    429: error_doc(
                        "More reads per second than the key's configRatePerSec; wait Retry-After.",
                        codes.RATE_LIMITED,
                    ),
                },
                tags=["config"],
            )
            def get(self, request):
                return super().get(request)

        return Described
