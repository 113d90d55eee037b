"""Admin for ingestion warnings: per tenant, filtered by code and time, read-only."""

from __future__ import annotations

from django.contrib import admin

from codex.admin import ReadOnlyModelAdmin
from ingest.models import IngestWarning
from tenants.admin_filters import TenantFilter


@admin.register(IngestWarning)
class IngestWarningAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "tenant", "code", "message", "idempotency_key", "request_id")
    list_filter = (TenantFilter, "code", "created_at")
    search_fields = ("request_id", "idempotency_key", "message")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = (
        "tenant",
        "created_at",
        "code",
        "message",
        "request_id",
        "key_id",
        "idempotency_key",
        "subject_id",
        "item",
    )
