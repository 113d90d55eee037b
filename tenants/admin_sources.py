"""Operator admin for webhook sources: add, disable/enable, rotate the secret, set the API key.

Each write has its own permission (add_webhooksource, disable_webhooksource,
rotate_webhooksource_secret), goes through tenants.services.sources and is audited with the
operator's user. No secret is ever rendered: the encrypted columns are never part of a form or a
page.
"""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from codex.admin import ServiceAddMixin
from codex.commands import duration_parse
from codex.errors import DomainError, operator_message
from tenants.admin_filters import TenantFilter
from tenants.audit import actor_of
from tenants.models import Tenant, WebhookSource
from tenants.selectors import source_get, source_path
from tenants.services.offboarding import tenant_require_not_offboarded
from tenants.services.sources import (
    source_check,
    source_create,
    source_credentials_rotate,
    source_overlap_check,
    source_secret_check,
    sources_set_enabled_many,
)

SOURCE_FIELDS = (
    "source_id",
    "tenant",
    "kind",
    "type_field",
    "subject_field",
    "enabled",
    "previous_valid_until",
    "created_at",
    "last_received_at",
    "accepted_count",
    "duplicate_count",
)
SECRET_COLUMNS = ("secret_encrypted", "previous_secret_encrypted", "api_key_encrypted")


class WebhookSourceInline(admin.TabularInline):
    """The tenant's sources on its admin page: last delivery and counts, read-only."""

    model = WebhookSource
    fields = (
        "source_id",
        "kind",
        "enabled",
        "last_received_at",
        "accepted_count",
        "duplicate_count",
    )
    readonly_fields = fields
    exclude = SECRET_COLUMNS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TenantField(forms.ModelChoiceField):
    """A tenant typed in by its slug (or id): one text input, not a select of every tenant."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            lookup = {"pk": uuid.UUID(text)}
        except ValueError:
            lookup = {"slug": text.lower()}
        tenant = self.queryset.filter(**lookup).first()
        if tenant is None:
            raise forms.ValidationError(f"no tenant {text!r}", code="invalid_choice")
        return tenant


class SourceAddForm(forms.ModelForm):
    """A new source: the platform's secret is typed in once and never shown again."""

    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        help_text="The platform's signing secret (Shopify app secret, Stripe whsec_...).",
    )
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="stripe only: an API key that may read events (for reconcile).",
    )

    class Meta:
        model = WebhookSource
        fields = ("kind", "type_field", "subject_field")
        help_texts = {
            "subject_field": "standard only: the body's subject id, e.g. customer.id "
            "(events_erase finds the events by it).",
        }

    tenant = TenantField(queryset=Tenant.objects.all(), help_text="The tenant's slug.")
    field_order = ("tenant", "kind", "secret", "type_field", "subject_field", "api_key")

    def clean(self):
        data = super().clean()
        try:
            if data.get("tenant") is not None:
                tenant_require_not_offboarded(tenant_id=data["tenant"].id)
            source_check(
                kind=data.get("kind") or "",
                secret=data.get("secret") or "",
                type_field=data.get("type_field") or "type",
                api_key=data.get("api_key") or "",
                subject_field=data.get("subject_field") or "",
            )
        except DomainError as exc:
            raise forms.ValidationError(operator_message(exc)) from exc
        return data


class RotateForm(forms.Form):
    """A new secret (old one verifies for the overlap) and/or a new Stripe API key."""

    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    overlap = forms.CharField(initial="24h", help_text="e.g. 30m, 24h, 7d, 0s; at most 30d")
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="stripe only: replaces the stored API key.",
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if not secret:
            return ""
        try:
            return source_secret_check(kind=self.kind, secret=secret)
        except DomainError as exc:
            raise forms.ValidationError(operator_message(exc)) from exc

    def clean_overlap(self):
        try:
            return source_overlap_check(duration_parse(self.cleaned_data["overlap"]))
        except DomainError as exc:
            raise forms.ValidationError(operator_message(exc)) from exc


@admin.register(WebhookSource)
class WebhookSourceAdmin(ServiceAddMixin, admin.ModelAdmin):
    """Webhook sources: listed without secrets; add, disable/enable, rotate behind permissions."""

    list_display = (
        "source_id",
        "tenant",
        "kind",
        "enabled",
        "last_received_at",
        "accepted_count",
        "duplicate_count",
    )
    list_filter = (TenantFilter, "kind", "enabled")
    list_select_related = ("tenant",)
    search_fields = ("source_id", "tenant__slug")
    fields = SOURCE_FIELDS
    readonly_fields = SOURCE_FIELDS
    exclude = SECRET_COLUMNS
    actions = ("disable_sources", "enable_sources")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SourceAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("tenant", "kind", "secret", "type_field", "subject_field", "api_key")
        return (*SOURCE_FIELDS, "delivery_url", "rotate")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else (*SOURCE_FIELDS, "delivery_url", "rotate")

    @admin.display(description="delivery URL")
    def delivery_url(self, obj) -> str:
        return settings.CODEX_PUBLIC_URL.rstrip("/") + source_path(obj.source_id)

    @admin.display(description="secret / API key")
    def rotate(self, obj):
        url = reverse("admin:tenants_webhooksource_rotate", args=[obj.pk])
        return format_html('<a href="{}">Rotate the secret or set the API key</a>', url)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disable instead: the row stays for the audit trail and the counts

    def add_via_service(self, request, form):
        try:
            info = source_create(
                tenant=form.cleaned_data["tenant"],
                kind=form.cleaned_data["kind"],
                secret=form.cleaned_data["secret"],
                type_field=form.cleaned_data.get("type_field") or "type",
                api_key=form.cleaned_data.get("api_key") or "",
                subject_field=form.cleaned_data.get("subject_field") or "",
                actor=actor_of(request.user),
                user=request.user,
            )
        except DomainError as exc:
            raise PermissionDenied(operator_message(exc)) from exc
        self.message_user(request, f"Source created; paste this URL in the platform: {info.url}")
        return source_get(source_id=info.source_id)

    def change_via_service(self, request, obj, form) -> None:
        pass  # nothing on the change page is editable

    def has_disable_permission(self, request) -> bool:
        return request.user.has_perm("tenants.disable_webhooksource")

    def _set_enabled(self, request, queryset, enabled: bool) -> list[str]:
        return sources_set_enabled_many(
            sources=queryset, enabled=enabled, actor=actor_of(request.user), user=request.user
        )

    @admin.action(
        description="Disable selected sources (deliveries get 410)", permissions=["disable"]
    )
    def disable_sources(self, request, queryset):
        done = self._set_enabled(request, queryset, False)
        self.message_user(request, f"Disabled {len(done)} source(s).")

    @admin.action(description="Enable selected sources", permissions=["disable"])
    def enable_sources(self, request, queryset):
        try:
            done = self._set_enabled(request, queryset, True)
        except DomainError as exc:  # an offboarded tenant's source: offboarding is final
            self.message_user(request, f"Nothing enabled: {operator_message(exc)}", messages.ERROR)
            return
        self.message_user(request, f"Enabled {len(done)} source(s).")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name="tenants_webhooksource_rotate",
            ),
            *super().get_urls(),
        ]

    def rotate_view(self, request, object_id):
        """Rotate the signing secret and/or set the Stripe API key (own permission)."""
        if not request.user.has_perm("tenants.rotate_webhooksource_secret"):
            raise PermissionDenied
        source = get_object_or_404(WebhookSource, pk=object_id)
        form = RotateForm(request.POST or None, kind=source.kind)
        if request.method == "POST" and form.is_valid():
            try:
                done = source_credentials_rotate(
                    source_id=source.source_id,
                    secret=form.cleaned_data["secret"],
                    overlap=form.cleaned_data["overlap"],
                    api_key=form.cleaned_data["api_key"],
                    actor=actor_of(request.user),
                    user=request.user,
                )
            except DomainError as exc:
                self.message_user(
                    request, f"Nothing changed: {operator_message(exc)}", messages.ERROR
                )
            else:
                if done.previous_valid_until is not None:
                    self.message_user(
                        request,
                        "Secret rotated; the previous one verifies until "
                        f"{done.previous_valid_until}.",
                    )
                if done.api_key_stored:
                    self.message_user(request, "API key stored.")
                return redirect(reverse("admin:tenants_webhooksource_change", args=[source.pk]))
        response = TemplateResponse(
            request,
            "admin/tenants/webhooksource_rotate.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Rotate {source.source_id}",
                "source": source,
                "form": form,
                "opts": self.model._meta,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
