"""The admin flag editor: global values, per-tenant overrides, pause/resume sync, change history.

Every write goes through flags.services (validation, history, cache invalidation). Changing
anything needs the `flags.change_flags` permission; `flags.view_flags` gives a read-only view.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from codex.errors import DomainError, operator_message
from flags.forms import GlobalFlagForm, TenantFlagsForm
from flags.models import FlagChange, GlobalFlag, TenantFlagSet
from flags.registry import defaults, history_text, specs, value_text
from flags.selectors import flags_explain, flags_explain_many
from flags.services import flag_update, flags_set_sync_all, flags_set_sync_many
from tenants.admin_filters import TenantFilter
from tenants.audit import actor_of

CHANGE_PERM = "flags.change_flags"
VIEW_PERM = "flags.view_flags"
HISTORY_ROWS = 20


def _can_change(request) -> bool:
    return request.user.is_active and request.user.has_perm(CHANGE_PERM)


def _can_view(request) -> bool:
    return request.user.is_active and (
        request.user.has_perm(VIEW_PERM) or request.user.has_perm(CHANGE_PERM)
    )


class _FlagPermissions:
    """One permission pair for every flag screen, instead of Django's per-model ones."""

    def has_module_permission(self, request):
        return _can_view(request)

    def has_view_permission(self, request, obj=None):
        return _can_view(request)

    def has_change_permission(self, request, obj=None):
        return _can_change(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- global flags -------------------------------------------------------------------------------


@admin.register(GlobalFlag)
class GlobalFlagAdmin(_FlagPermissions, admin.ModelAdmin):
    """Global values: what every tenant without an override gets."""

    form = GlobalFlagForm
    change_list_template = "admin/flags/globalflag/change_list.html"
    list_display = ("key", "effective", "source", "built_in_default", "allowed", "updated")
    fields = ("key", "setting", "built_in_default", "allowed", "updated")
    readonly_fields = ("key", "built_in_default", "allowed", "updated")
    actions = None

    @admin.display(description="effective value")
    def effective(self, obj):
        value = obj.value if obj.value is not None else defaults().get(obj.key)
        return value_text(value)

    @admin.display(description="comes from")
    def source(self, obj):
        return "global setting" if obj.value is not None else "built-in default"

    @admin.display(description="built-in default")
    def built_in_default(self, obj):
        return value_text(defaults().get(obj.key))

    @admin.display(description="allowed")
    def allowed(self, obj):
        spec = specs().get(obj.key)
        return spec.bounds_text() if spec else "unknown flag (no longer registered)"

    @admin.display(description="last change")
    def updated(self, obj):
        if not obj.updated_by:
            return "never changed"
        return f"{obj.updated_at:%Y-%m-%d %H:%M:%S} UTC by {obj.updated_by}"

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return fields if _can_change(request) else [f for f in fields if f != "setting"]

    def changelist_view(self, request, extra_context=None):
        # No rows are created here (a GET never writes): post_migrate creates every registered
        # flag's global row (flags.apps), and flag_update creates one it finds missing.
        extra_context = {**(extra_context or {}), "can_change_flags": _can_change(request)}
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(key__in=list(specs()))

    def save_model(self, request, obj, form, change):
        try:
            flag_update(
                tenant_id=None,
                values={obj.key: form.cleaned_data["setting"]},
                actor=actor_of(request.user),
                via=FlagChange.Via.ADMIN,
                user=request.user,
            )
        except DomainError as exc:
            # Already validated by the form; kept so a race can never become a 500.
            self.message_user(request, operator_message(exc), messages.ERROR)
        obj.refresh_from_db()

    def get_urls(self):
        urls = [
            path(
                "sync-all/<str:action>/",
                self.admin_site.admin_view(self.sync_all_view),
                name="flags_sync_all",
            )
        ]
        return urls + super().get_urls()

    def sync_all_view(self, request, action):
        """Confirm (GET) and perform (POST) pause/resume of sync for every tenant."""
        if action not in ("pause", "resume"):
            raise PermissionDenied
        if not _can_change(request):
            raise PermissionDenied
        enabled = action == "resume"
        if request.method == "POST":
            verb = "Resumed" if enabled else "Paused"
            try:
                changes = flags_set_sync_all(
                    enabled=enabled,
                    actor=actor_of(request.user),
                    via=FlagChange.Via.ADMIN,
                    user=request.user,
                    reason=f"{action} sync for all tenants",
                )
            except DomainError as exc:  # all or nothing (an override of a tenant being offboarded)
                self.message_user(
                    request, f"Nothing {verb.lower()}: {operator_message(exc)}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f"{verb} sync for all tenants ({len(changes)} stored value(s) changed).",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:flags_tenantflagset_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.capitalize()} sync for all tenants?",
            "action": action,
            "enabled": enabled,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/flags/sync_all_confirm.html", context)


# --- per-tenant flags ---------------------------------------------------------------------------


@admin.register(TenantFlagSet)
class TenantFlagSetAdmin(_FlagPermissions, admin.ModelAdmin):
    """Each tenant's effective flags, where each comes from, overrides and one-click pause."""

    form = TenantFlagsForm
    change_list_template = "admin/flags/tenantflagset/change_list.html"
    list_display = ("slug", "name", "status", "sync", "interval", "retry_cap", "ingest_rate")
    list_display_links = ("slug",)
    search_fields = ("slug", "name")
    list_filter = ("status",)
    # Each row explains every flag and carries a button (about 1 KiB): 50 rows keep a page of
    # 10,000 tenants under 100 KiB (tests/tenants/test_admin_at_scale.py).
    list_per_page = 50
    readonly_fields = ("slug", "name", "status", "effective_values", "recent_changes")
    actions = ["pause_sync", "resume_sync"]

    def get_form(self, request, obj=None, **kwargs):
        # The flag fields are built per registered flag by TenantFlagsForm itself; they are not
        # model fields, so the form class is made with none.
        kwargs["fields"] = ()
        return super().get_form(request, obj, **kwargs)

    # The page's tenants have their flags explained in two queries (see get_changelist_instance).
    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        cl.result_list = list(cl.result_list)
        explained = flags_explain_many(tenant_ids=[t.pk for t in cl.result_list])
        for tenant in cl.result_list:
            tenant.flags_explained = explained[tenant.pk]
        return cl

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if _can_change(request):
            columns.append("one_click")
        return columns

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": ["slug", "name", "status"]})]
        if _can_change(request):
            fieldsets.append(
                (
                    "Overrides for this tenant (empty: follow the global value)",
                    {"fields": list(specs())},
                )
            )
        return [
            *fieldsets,
            ("Effective values", {"fields": ["effective_values"]}),
            ("Recent changes", {"fields": ["recent_changes"]}),
        ]

    def _explained(self, obj):
        cached = getattr(obj, "flags_explained", None)
        if cached is None:
            cached = obj.flags_explained = flags_explain(tenant_id=obj.pk)
        return cached

    def _cell(self, obj, key):
        item = self._explained(obj)[key]
        return format_html("{} <small>({})</small>", value_text(item.value), item.source)

    @admin.display(description="syncEnabled")
    def sync(self, obj):
        item = self._explained(obj)["syncEnabled"]
        state = "on" if item.value else "PAUSED"
        return format_html(
            '<span class="flag-sync" data-sync="{}">{}</span> <small>({})</small>',
            value_text(item.value),
            state,
            item.source,
        )

    @admin.display(description="minIntervalSec")
    def interval(self, obj):
        return self._cell(obj, "minIntervalSec")

    @admin.display(description="retryCap")
    def retry_cap(self, obj):
        return self._cell(obj, "retryCap")

    @admin.display(description="ingestRatePerSec")
    def ingest_rate(self, obj):
        return self._cell(obj, "ingestRatePerSec")

    @admin.display(description="sync")
    def one_click(self, obj):
        enabled = self._explained(obj)["syncEnabled"].value
        action, label = ("pause", "Pause sync") if enabled else ("resume", "Resume sync")
        url = reverse("admin:flags_tenant_sync", args=[obj.pk, action])
        # The changelist is already a POST form with a CSRF token: the button just retargets it.
        return format_html(
            '<button type="submit" class="button flag-toggle" name="_flag_toggle" '
            'formaction="{}" data-tenant="{}">{}</button>',
            url,
            obj.slug,
            label,
        )

    @admin.display(description="value in force")
    def effective_values(self, obj):
        rows = [
            {
                "key": key,
                "value": value_text(e.value),
                "source": e.source,
                "global_value": value_text(e.global_value),
            }
            for key, e in self._explained(obj).items()
        ]
        return render_to_string("admin/flags/tenantflagset/effective_values.html", {"rows": rows})

    @admin.display(description="history")
    def recent_changes(self, obj):
        changes = FlagChange.objects.filter(tenant_id=obj.pk)[:HISTORY_ROWS]
        if not changes:
            return "No changes yet."
        rows = [
            {
                "at": f"{c.at:%Y-%m-%d %H:%M:%S}",
                "key": c.key,
                "old": history_text(c.old, c.old_effective, tenant=True),
                "new": history_text(c.new, c.new_effective, tenant=True),
                "actor": c.actor,
                "via": c.via,
            }
            for c in changes
        ]
        link = reverse("admin:flags_flagchange_changelist") + f"?tenant__id__exact={obj.pk}"
        return render_to_string(
            "admin/flags/tenantflagset/recent_changes.html", {"rows": rows, "link": link}
        )

    def save_model(self, request, obj, form, change):
        if not form.has_changed():
            return
        try:
            # Every override as the form has it: flag_update skips the ones equal to what is stored.
            flag_update(
                tenant_id=obj.pk,
                values={key: form.cleaned_data.get(key) for key in specs()},
                actor=actor_of(request.user),
                via=FlagChange.Via.ADMIN,
                user=request.user,
            )
        except DomainError as exc:
            # Already validated by the form; a tenant offboarded or deleted meanwhile is a
            # message, not a 500.
            self.message_user(request, operator_message(exc), messages.ERROR)

    def save_related(self, request, form, formsets, change):
        pass  # nothing of the tenant itself is edited here

    def get_urls(self):
        urls = [
            path(
                "<uuid:tenant_id>/sync/<str:action>/",
                self.admin_site.admin_view(self.sync_view),
                name="flags_tenant_sync",
            )
        ]
        return urls + super().get_urls()

    def _set_sync(self, request, tenants, enabled: bool) -> bool:
        """Pause or resume sync for these tenants, all or nothing; False (told) if refused."""
        try:
            flags_set_sync_many(
                tenant_ids=[tenant.pk for tenant in tenants],
                enabled=enabled,
                actor=actor_of(request.user),
                via=FlagChange.Via.ADMIN,
                user=request.user,
            )
        except DomainError as exc:  # an offboarded tenant in the selection, or one gone
            verb = "resumed" if enabled else "paused"
            self.message_user(request, f"Nothing {verb}: {operator_message(exc)}", messages.ERROR)
            return False
        return True

    def sync_view(self, request, tenant_id, action):
        """One-click pause/resume for one tenant (POST only)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action not in ("pause", "resume") or not _can_change(request):
            raise PermissionDenied
        tenant = get_object_or_404(TenantFlagSet, pk=tenant_id)
        enabled = action == "resume"
        if self._set_sync(request, [tenant], enabled):
            verb = "Resumed" if enabled else "Paused"
            self.message_user(request, f"{verb} sync for {tenant.slug}.", messages.SUCCESS)
        query = request.GET.urlencode()
        target = reverse("admin:flags_tenantflagset_changelist")
        return HttpResponseRedirect(f"{target}?{query}" if query else target)

    @admin.action(description="Pause sync for selected tenants", permissions=["change"])
    def pause_sync(self, request, queryset):
        if self._set_sync(request, queryset, False):
            self.message_user(request, f"Paused sync for {queryset.count()} tenant(s).")

    @admin.action(description="Resume sync for selected tenants", permissions=["change"])
    def resume_sync(self, request, queryset):
        if self._set_sync(request, queryset, True):
            self.message_user(request, f"Resumed sync for {queryset.count()} tenant(s).")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_change_flags": _can_change(request)}
        return super().changelist_view(request, extra_context)


# --- history ------------------------------------------------------------------------------------


@admin.register(FlagChange)
class FlagChangeAdmin(_FlagPermissions, admin.ModelAdmin):
    """Read-only change history of every flag, global and per tenant."""

    list_display = ("at", "scope", "key", "change", "actor", "via", "reason")
    list_filter = (TenantFilter, "via", "key")
    search_fields = ("tenant__slug", "actor", "key")
    date_hierarchy = "at"
    list_select_related = ("tenant",)
    show_full_result_count = False
    actions = None

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="tenant", ordering="tenant__slug")
    def scope(self, obj):
        return obj.tenant.slug if obj.tenant_id else "(global)"

    @admin.display(description="old → new")
    def change(self, obj):
        tenant = obj.tenant_id is not None
        old = history_text(obj.old, obj.old_effective, tenant=tenant)
        return f"{old} → {history_text(obj.new, obj.new_effective, tenant=tenant)}"
