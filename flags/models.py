"""Runtime flags: global defaults, per-tenant overrides (under RLS) and their change history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.models import Tenant, TenantOwned


class GlobalFlag(models.Model):
    """The platform-wide value of one flag; a NULL value means "the built-in default"."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["key"]
        verbose_name = "global flag"
        # One permission pair governs every flag screen (global and per tenant) and the CLI's
        # admin equivalent: operators get "change runtime flags", viewers get "view".
        permissions = [
            ("change_flags", "Can change runtime flags (global and per tenant)"),
            ("view_flags", "Can view runtime flags and their history"),
        ]

    def __str__(self) -> str:
        return self.key


class TenantFlag(TenantOwned):
    """A tenant's override of one flag; no row means the tenant follows the global value."""

    key = models.CharField(max_length=64)
    value = models.JSONField()
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="tenantflag_key_per_tenant")
        ]
        ordering = ["tenant_id", "key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"


class FlagChange(models.Model):
    """One change of one flag: who, when, how, for which tenant (NULL: global), old -> new.

    `old`/`new` hold the stored value; NULL means "not set here" (inherit). `old_effective` /
    `new_effective` hold the value in force before and after (what an inherited NULL meant then);
    NULL in rows written before they were recorded.
    """

    class Via(models.TextChoices):
        ADMIN = "admin", "admin"
        CLI = "cli", "CLI"
        PROVISION = "provision", "provisioning"
        API = "api", "API"

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, db_index=False
    )
    key = models.CharField(max_length=64)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    old_effective = models.JSONField(null=True, blank=True)
    new_effective = models.JSONField(null=True, blank=True)
    actor = models.CharField(max_length=150)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    via = models.CharField(max_length=16, choices=Via.choices)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-at"], name="flagchange_tenant_at")]
        ordering = ["-at", "-id"]
        get_latest_by = "at"

    def __str__(self) -> str:
        scope = self.tenant.slug if self.tenant_id else "global"
        return f"{scope} {self.key}: {self.old!r} -> {self.new!r}"


class TenantFlagSet(Tenant):
    """A tenant seen as its set of flags: the admin's per-tenant flag editor."""

    class Meta:
        proxy = True
        verbose_name = "tenant flags"
        verbose_name_plural = "tenant flags"
