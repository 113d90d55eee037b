"""Tenants, their devices and signing keys, and the operator audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Tenant(models.Model):
    """A pilot customer; every tenant-owned row points here."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        # Data deleted by tenant_offboard; the row stays as a tombstone with its audit trail.
        OFFBOARDED = "offboarded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]
        permissions = [("suspend_tenant", "Can suspend and resume tenants")]

    def __str__(self) -> str:
        return self.slug


class TenantOwned(models.Model):
    """Base for tenant-owned tables: tenant_id leads the primary key (see tenants.rls)."""

    # db_index=False: the composite primary key (tenant_id, id) already leads with tenant_id.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, editable=False)

    class Meta:
        abstract = True


class Device(TenantOwned):
    """A store device that runs the SDK."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="device_name_per_tenant")
        ]
        ordering = ["tenant_id", "name"]
        permissions = [("revoke_device", "Can revoke devices and their keys")]

    def __str__(self) -> str:
        return self.name


class SigningKey(TenantOwned):
    """An HMAC signing key; the secret is stored Fernet-encrypted and shown only at creation."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ROTATED = "rotated"  # still verifies until not_after
        REVOKED = "revoked"

    device = models.ForeignKey(
        Device,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        db_constraint=False,  # composite (tenant_id, device_id) FK added by tenants.rls
        db_index=False,
        related_name="keys",
    )
    key_id = models.CharField(max_length=64)
    secret_encrypted = models.TextField(editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    not_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key_id"], name="signingkey_key_id_per_tenant"
            )
        ]
        ordering = ["tenant_id", "-created_at"]
        permissions = [
            # Shows a freshly minted secret: given to no group by default, superusers only.
            ("rotate_signingkey", "Can rotate signing keys and see the new secret once"),
            ("revoke_signingkey", "Can revoke signing keys"),
        ]

    def __str__(self) -> str:
        return self.key_id


class AuditLog(models.Model):
    """Who did what, when, to which tenant (null for platform-wide actions)."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE)
    actor = models.CharField(max_length=150)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-at"], name="auditlog_tenant_at")]
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


class WebhookSource(TenantOwned):
    """A store platform (Shopify, Stripe, a Standard Webhooks sender) that delivers into a tenant.

    Its public id (in the delivery URL) names the tenant, as key ids do. The signing secret is
    Fernet-encrypted like signing keys; during a rotation the previous one still verifies until
    `previous_valid_until`. The counters and last_received_at are kept by the delivery path.
    """

    class Kind(models.TextChoices):
        SHOPIFY = "shopify"
        STRIPE = "stripe"
        STANDARD = "standard"

    source_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    # standard: the JSON field of the body that names the event type.
    type_field = models.CharField(max_length=64, default="type")
    # standard: the dotted path of the body field that names the event's subject ("" = none).
    subject_field = models.CharField(max_length=64, blank=True, default="")
    # stripe: the account's API key (restricted, read events) for reconcile; encrypted.
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True)
    accepted_count = models.BigIntegerField(default=0)
    duplicate_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source_id"], name="webhooksource_id_per_tenant"
            )
        ]
        ordering = ["tenant_id", "created_at"]
        verbose_name = "webhook source"
        permissions = [
            ("disable_webhooksource", "Can disable and enable webhook sources"),
            (
                "rotate_webhooksource_secret",
                "Can rotate webhook source secrets and set their API keys",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.source_id}"
