"""drf-spectacular's hooks: the public API plus the schema-only plain views; bodies required.

Its own module because it needs both descriptions: ingest.webhooks.openapi builds on
ingest.openapi's components, so ingest.openapi may not import it back.
"""

from __future__ import annotations

from ingest.openapi import SCHEMA_PATHS, EventsDocView
from ingest.webhooks.openapi import SOURCE_PATH, SourceWebhooksDocView


def add_events_endpoint(endpoints):
    """Preprocessing hook: only the public API, plus the schema-only POST /v1/events."""
    kept = [e for e in endpoints if e[0] in SCHEMA_PATHS]
    kept.append(("/v1/events", r"^v1/events$", "POST", EventsDocView.as_view()))
    # The webhook sources' endpoint (ingest.webhooks), also a plain Django view.
    kept.append(
        (
            SOURCE_PATH,
            r"^v1/sources/(?P<source_id>[^/]+)/webhooks$",
            "POST",
            SourceWebhooksDocView.as_view(),
        )
    )
    return kept


def require_request_bodies(result, generator, request, public):
    """Postprocessing hook: every request body is required (the server refuses a missing one).

    drf-spectacular leaves a body optional when its schema has no required property (a oneOf of
    a single event and a batch, a delivery's free-form object), yet an empty POST answers 400 or
    415: say so, so that generated requests always carry one.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body is not None:
                body["required"] = True
    return result
