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
from django.db import transaction
from django.db.models import Count, Q
from django.template.response import TemplateResponse

from codex.admin import ReadOnlyModelAdmin
from tenants.admin_filters import TenantFilter
from tenants.admin_sources import WebhookSourceInline
from tenants.audit import actor_of
from tenants.errors import TenantError
from tenants.models import AuditLog, Device, SigningKey, Tenant
from tenants.selectors import KeyReport
from tenants.services.devices import device_revoke
from tenants.services.keys import signing_key_revoke, signing_key_rotate
from tenants.services.tenants import (
    SLUG_RE,
    tenant_provision,
    tenant_rename,
    tenant_resume,
    tenant_suspend,
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
class TenantAdmin(admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        actor = actor_of(request.user)
        if change:
            if "name" in form.changed_data:
                tenant_rename(tenant=obj, name=obj.name, actor=actor, user=request.user)
            return
        result = tenant_provision(slug=obj.slug, name=obj.name, actor=actor, user=request.user)
        if not result.created:
            raise TenantError(f"tenant {obj.slug!r} already exists")  # form validation catches it
        saved = Tenant.objects.get(pk=result.tenant_id)
        obj.pk, obj.created_at, obj.status = saved.pk, saved.created_at, saved.status
        obj._state.adding = False
        obj._state.db = saved._state.db
        request._codex_new_keys = [k for k in result.keys if k.secret]

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
        actor = actor_of(request.user)
        with transaction.atomic():  # all or nothing
            changed = [
                t.slug for t in queryset if tenant_suspend(tenant=t, actor=actor, user=request.user)
            ]
        self.message_user(request, f"Suspended: {', '.join(changed) or 'none (already)'}")

    @admin.action(description="Resume selected tenants", permissions=["suspend"])
    def resume_tenants(self, request, queryset):
        actor = actor_of(request.user)
        try:
            with transaction.atomic():  # all or nothing
                changed = [
                    t.slug
                    for t in queryset
                    if tenant_resume(tenant=t, actor=actor, user=request.user)
                ]
        except TenantError as exc:  # an offboarded tenant: offboarding is final
            self.message_user(request, f"Nothing resumed: {exc}", messages.ERROR)
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
        done = []
        with transaction.atomic():  # all or nothing
            for device in queryset.select_related("tenant"):
                _, revoked = device_revoke(
                    tenant=device.tenant,
                    name=device.name,
                    actor=actor_of(request.user),
                    user=request.user,
                )
                done.append(f"{device.tenant.slug}/{device.name} ({revoked} key(s))")
        self.message_user(request, f"Revoked: {', '.join(done)}")


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
        actor = actor_of(request.user)
        owners: dict[tuple, SigningKey] = {}
        skipped = []
        for key in queryset.select_related("tenant", "device"):
            if key.status != SigningKey.Status.ACTIVE or (key.device and key.device.revoked_at):
                skipped.append(key.key_id)
                continue
            owners.setdefault((key.tenant_id, key.device_id), key)
        new_keys: list[KeyReport] = []
        try:
            with transaction.atomic():  # all or nothing: no secret shown for a partial rotation
                for key in owners.values():
                    new = signing_key_rotate(
                        tenant=key.tenant,
                        device=key.device,
                        overlap=ADMIN_ROTATION_OVERLAP,
                        actor=actor,
                        user=request.user,
                    )
                    new_keys.append(
                        KeyReport(key_id=new.key_id, secret=new.secret, device=new.device)
                    )
        except TenantError as exc:
            self.message_user(request, f"Nothing rotated: {exc}", messages.ERROR)
            return None
        if skipped:
            self.message_user(
                request,
                f"Not rotated (not active, or device revoked): {', '.join(skipped)}",
                messages.WARNING,
            )
        if not new_keys:
            return None
        slugs = sorted({k.tenant.slug for k in owners.values()})
        return new_keys_response(
            request, title="New signing keys", tenant_slug=", ".join(slugs), keys=new_keys
        )

    @admin.action(
        description="Revoke selected keys (stop verifying at once)", permissions=["revoke"]
    )
    def revoke_keys(self, request, queryset):
        actor = actor_of(request.user)
        with transaction.atomic():  # all or nothing
            revoked = [
                k.key_id
                for k in queryset
                if signing_key_revoke(key=k, actor=actor, user=request.user)
            ]
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
