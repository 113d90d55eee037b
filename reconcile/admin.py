"""Admin for reconcile runs (read-only: only the nightly job and the command write them)."""

from __future__ import annotations

from django.contrib import admin

from codex.admin import ReadOnlyModelAdmin
from reconcile.models import ReconcileRun, SourceReconcileRun
from tenants.admin_filters import TenantFilter


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyModelAdmin):
    list_display = (
        "day",
        "tenant",
        "accepted",
        "enriched",
        "dead_lettered",
        "pending",
        "drift_percent",
        "computed_at",
    )
    list_filter = (TenantFilter,)
    list_select_related = ("tenant",)
    date_hierarchy = "day"
    ordering = ("-day", "tenant__slug")
    show_full_result_count = False

    @admin.display(description="drift", ordering="drift")
    def drift_percent(self, obj: ReconcileRun) -> str:
        return f"{obj.drift:.3%}"


@admin.register(SourceReconcileRun)
class SourceReconcileRunAdmin(ReadOnlyModelAdmin):
    """What the source system had that the ledger lacked (reconcile --source), per source day."""

    list_display = (
        "day",
        "tenant",
        "kind",
        "source_id",
        "at_source",
        "missing_at_ingest",
        "repaired",
        "run_at",
    )
    list_filter = (TenantFilter, "kind")
    list_select_related = ("tenant",)
    date_hierarchy = "day"
    ordering = ("-day", "tenant__slug")
    show_full_result_count = False
