"""URLs of the ingest app, and the public API's OpenAPI description (ingest/openapi.py)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ingest import views
from ingest.lookup_views import EventLookupView
from ingest.webhooks import views as webhook_views

urlpatterns = [
    path("v1/events", views.events, name="events"),
    path("v1/events/<path:idempotency_key>", EventLookupView.as_view(), name="event_lookup"),
    path(
        "v1/sources/<str:source_id>/webhooks",
        webhook_views.source_webhooks,
        name="source-webhooks",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
]
