"""Operator admin for tenants, devices, signing keys and the audit log.

Requests under /admin/ run in system_scope("admin") (tenants.middleware). Every write goes through
tenants.services, so it is audited with the operator's user. Secrets are never rendered: the
encrypted column is excluded everywhere, and a new secret appears exactly once, on the page an
action returns (never in a message, which would be stored in the session or a cookie).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse

from codex.admin import ReadOnlyModelAdmin, ServiceAddMixin
from codex.errors import DomainError, operator_message
from tenants.admin_filters import TenantFilter
from tenants.admin_sources import WebhookSourceInline
from tenants.audit import actor_of
from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.selectors import KeyReport
from tenants.services.devices import devices_revoke_many
from tenants.services.keys import keys_revoke_many, keys_rotate_many
from tenants.services.tenants import (
    SLUG_RE,
    tenant_create,
    tenant_rename,
    tenants_resume_many,
    tenants_suspend_many,
)

ADMIN_ROTATION_OVERLAP = timedelta(hours=24)
KEY_FIELDS = ("key_id", "tenant", "device", "status", "not_after", "created_at", "last_used_at")


def new_keys_response(request, *, title: str, tenant_slug: str, keys: list[KeyReport]):
    """The one page that shows new secrets; not cached, not stored anywhere."""
    response = TemplateResponse(
        request,
        "admin/tenants/new_keys.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "tenant_slug": tenant_slug,
            "keys": keys,
            "base_url": _base_url(),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


def _base_url() -> str:
    from django.conf import settings

    return settings.CODEX_PUBLIC_URL


class _ReadOnlyInline(admin.TabularInline):
    """A listing inside the tenant page: no adds, no deletes, a link to each row."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DeviceInline(_ReadOnlyInline):
    """The tenant's devices, read-only (revoke from the device list)."""

    model = Device
    fields = ("name", "created_at", "revoked_at")
    readonly_fields = fields


class SigningKeyInline(_ReadOnlyInline):
    """The tenant's keys, read-only; the secret column is never part of the form."""

    model = SigningKey
    fields = ("key_id", "device", "status", "not_after", "created_at", "last_used_at")
    readonly_fields = fields
    exclude = ("secret_encrypted",)


class TenantForm(forms.ModelForm):
    """The slug rules of tenant_provision, checked as form validation (not a 500)."""

    class Meta:
        model = Tenant
        fields = ("slug", "name")

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if not SLUG_RE.match(slug):
            raise forms.ValidationError(
                "1-63 lower-case letters, digits or '-', not starting or ending with '-'."
            )
        return slug


@admin.register(Tenant)
class TenantAdmin(ServiceAddMixin, admin.ModelAdmin):
    """Tenants: add provisions (tenant key shown once); name editable; suspend/resume actions."""

    form = TenantForm

    list_display = ("slug", "name", "status", "devices", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    actions = ("suspend_tenants", "resume_tenants")
    inlines = (DeviceInline, SigningKeyInline, WebhookSourceInline)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_devices=Count("device", filter=Q(device__revoked_at__isnull=True)))
        )

    @admin.display(description="active devices", ordering="_devices")
    def devices(self, obj) -> int:
        return obj._devices

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("slug", "name")
        return ("id", "slug", "name", "status", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # The slug is the key id's public name and the id is every row's tenant: never edited.
        # Status changes only through the audited suspend/resume actions.
        return () if obj is None else ("id", "slug", "status", "created_at")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a tenant is suspended, never deleted from the admin (cascade = data loss)

    def has_add_permission(self, request) -> bool:
        # Provisioning shows the new tenant key's secret: it needs the secret-minting permission.
        return super().has_add_permission(request) and request.user.has_perm(
            "tenants.rotate_signingkey"
        )

    def add_via_service(self, request, form):
        # A taken slug is a form error already; tenant_create's TenantError covers a race.
        created = tenant_create(
            slug=form.cleaned_data["slug"],
            name=form.cleaned_data["name"],
            actor=actor_of(request.user),
            user=request.user,
        )
        request._codex_new_keys = list(created.keys)
        return created.tenant

    def change_via_service(self, request, obj, form) -> None:
        if "name" in form.changed_data:
            tenant_rename(
                tenant=obj, name=obj.name, actor=actor_of(request.user), user=request.user
            )

    def response_add(self, request, obj, post_url_continue=None):
        keys = getattr(request, "_codex_new_keys", None)
        if keys:
            return new_keys_response(
                request, title=f"Tenant {obj.slug} provisioned", tenant_slug=obj.slug, keys=keys
            )
        return super().response_add(request, obj, post_url_continue)

    def has_suspend_permission(self, request) -> bool:
        return request.user.has_perm("tenants.suspend_tenant")

    @admin.action(
        description="Suspend selected tenants (their requests get 403)", permissions=["suspend"]
    )
    def suspend_tenants(self, request, queryset):
        changed = tenants_suspend_many(
            tenants=queryset, actor=actor_of(request.user), user=request.user
        )
        self.message_user(request, f"Suspended: {', '.join(changed) or 'none (already)'}")

    @admin.action(description="Resume selected tenants", permissions=["suspend"])
    def resume_tenants(self, request, queryset):
        try:
            changed = tenants_resume_many(
                tenants=queryset, actor=actor_of(request.user), user=request.user
            )
        except DomainError as exc:  # an offboarded tenant: offboarding is final
            self.message_user(request, f"Nothing resumed: {operator_message(exc)}", messages.ERROR)
            return
        self.message_user(request, f"Resumed: {', '.join(changed) or 'none (already active)'}")


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Devices: read-only; revoke as an action (its keys stop verifying at once)."""

    list_display = ("name", "tenant", "created_at", "revoked_at")
    list_filter = (TenantFilter, ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("tenant",)
    search_fields = ("name", "tenant__slug")
    fields = ("tenant", "name", "created_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke_devices",)

    def has_add_permission(self, request) -> bool:
        return False  # devices come from provision_tenant --device (which also issues the key)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("tenants.revoke_device")

    @admin.action(
        description="Revoke selected devices and their keys (effective at once)",
        permissions=["revoke"],
    )
    def revoke_devices(self, request, queryset):
        done = devices_revoke_many(
            devices=queryset, actor=actor_of(request.user), user=request.user
        )
        listed = ", ".join(f"{label} ({revoked} key(s))" for label, revoked in done)
        self.message_user(request, f"Revoked: {listed}")


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Signing keys: listed without secrets; rotate (new secret shown once) and revoke actions."""

    list_display = ("key_id", "tenant", "device", "status", "not_after", "last_used_at")
    list_filter = (TenantFilter, "status")
    list_select_related = ("tenant", "device")
    search_fields = ("key_id", "tenant__slug", "device__name")
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    exclude = ("secret_encrypted",)
    actions = ("rotate_keys", "revoke_keys")

    def has_add_permission(self, request) -> bool:
        return False  # keys come from provisioning and rotation, which show the secret once

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row stays for the audit trail

    def has_rotate_permission(self, request) -> bool:
        return request.user.has_perm("tenants.rotate_signingkey")

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("tenants.revoke_signingkey")

    @admin.action(
        description="Rotate selected keys (old key verifies 24 h more; new secret shown once)",
        permissions=["rotate"],
    )
    def rotate_keys(self, request, queryset):
        try:  # all or nothing: no secret is shown for a partial rotation
            rotation = keys_rotate_many(
                keys=queryset,
                overlap=ADMIN_ROTATION_OVERLAP,
                actor=actor_of(request.user),
                user=request.user,
            )
        except DomainError as exc:  # an offboarded tenant, an undecryptable secret
            self.message_user(request, f"Nothing rotated: {operator_message(exc)}", messages.ERROR)
            return None
        if rotation.skipped:
            self.message_user(
                request,
                f"Not rotated (not active, or device revoked): {', '.join(rotation.skipped)}",
                messages.WARNING,
            )
        if not rotation.new_keys:
            return None
        return new_keys_response(
            request,
            title="New signing keys",
            tenant_slug=", ".join(rotation.tenant_slugs),
            keys=list(rotation.new_keys),
        )

    @admin.action(
        description="Revoke selected keys (stop verifying at once)", permissions=["revoke"]
    )
    def revoke_keys(self, request, queryset):
        revoked = keys_revoke_many(keys=queryset, actor=actor_of(request.user), user=request.user)
        self.message_user(request, f"Revoked {len(revoked)} key(s).")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyModelAdmin):
    """The operator audit log: read-only."""

    list_display = ("at", "actor", "action", "tenant", "target")
    list_filter = (TenantFilter, "action")
    list_select_related = ("tenant",)
    search_fields = ("actor", "action", "target", "tenant__slug")
    date_hierarchy = "at"
    show_full_result_count = False
    fields = ("at", "actor", "actor_user", "action", "tenant", "target", "old", "new")
    readonly_fields = fields
