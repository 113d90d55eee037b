"""drf-spectacular's preprocessing hook: the public API plus the schema-only plain views.

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
