"""Root URLconf: the API, health endpoints, metrics and the admin."""

from django.contrib import admin
from django.urls import include, path

from codex import admin_throttle, health, metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("admin/login/", admin_throttle.throttled_login, name="admin_login_throttled"),
    path("admin/", admin.site.urls),
    path("", include("ingest.urls")),
    path("", include("flags.urls")),
]

handler400 = "codex.errors.handler400"
handler403 = "codex.errors.handler403"
handler404 = "codex.errors.handler404"
handler500 = "codex.errors.handler500"
