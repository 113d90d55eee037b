"""Admin for the ledger, events_enriched and the dead-letter queue (replay as an action)."""

from __future__ import annotations

from django.contrib import admin, messages

from codex.admin import ReadOnlyModelAdmin
from ingest import admin_warnings
from ingest.models import DeadLetter, EnrichedEvent, Event
from ingest.services.replay import deadletter_replay
from tenants.admin_filters import TenantFilter
from tenants.audit import actor_of

__all__ = ["admin_warnings"]  # registers IngestWarningAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "tenant",
        "type",
        "source",
        "idempotency_key",
        "received_at",
        "enriched_at",
    )
    list_filter = (TenantFilter, "source")
    search_fields = ("idempotency_key", "type")
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    show_full_result_count = False


@admin.register(EnrichedEvent)
class EnrichedEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "event_id",
        "tenant",
        "type",
        "source",
        "occurred_date",
        "amount_minor",
        "currency",
        "lag_ms",
    )
    list_filter = (TenantFilter, "source")
    list_select_related = ("tenant",)
    show_full_result_count = False


class OpenFilter(admin.SimpleListFilter):
    """Open (unresolved) entries by default: those are the ones to act on."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("resolved", "Resolved"), ("all", "All"))

    def choices(self, changelist):
        # Not the base class's extra "All" (no parameter), which showed as selected while the
        # list held only open entries: one "All", and the default (open) marked as selected.
        current = self.value() or "open"
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(resolved_at__isnull=True)
        if value == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "tenant",
        "event_id",
        "stage",
        "error_class",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "resolved_at",
    )
    list_filter = (OpenFilter, TenantFilter, "stage")
    list_select_related = ("tenant",)
    show_full_result_count = False
    actions = ["replay"]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("ingest.replay_deadletter")

    @admin.action(description="Replay selected entries (re-run enrichment)", permissions=["replay"])
    def replay(self, request, queryset):
        # deadletter_replay replays only the open ones among them.
        ids = list(queryset.values_list("id", flat=True))
        results = deadletter_replay(entry_ids=ids, actor=actor_of(request.user), user=request.user)
        resolved = sum(1 for r in results if r.outcome == "resolved")
        failed = len(results) - resolved
        level = messages.SUCCESS if not failed else messages.WARNING
        self.message_user(
            request, f"Replayed {len(results)}: {resolved} resolved, {failed} failed.", level
        )
