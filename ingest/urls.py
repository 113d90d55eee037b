"""URLs of the ingest app, and the public API's OpenAPI description (ingest/openapi.py)."""

from django.urls import path

from ingest import views
from ingest.lookup_views import EventLookupView
from ingest.schema_views import docs_view, schema_view
from ingest.webhooks import views as webhook_views

urlpatterns = [
    path("v1/events", views.events, name="events"),
    path("v1/events/<path:idempotency_key>", EventLookupView.as_view(), name="event_lookup"),
    path(
        "v1/sources/<str:source_id>/webhooks",
        webhook_views.source_webhooks,
        name="source-webhooks",
    ),
    # Staff only when deployed (CODEX_PUBLIC_API_DOCS opens them); the schema cached per process.
    path("api/schema/", schema_view, name="schema"),
    path("api/docs/", docs_view, name="api_docs"),
]
