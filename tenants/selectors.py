"""Reads of the tenants app: tenants by slug, devices, signing keys (the hot path's lookup)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from tenants import crypto, keycache
from tenants.errors import TenantNotFound
from tenants.models import Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedKey:
    """What authentication needs to verify a request signed with `key_id`."""

    key_id: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_active: bool
    device: str | None
    # Empty when the key exists but may no longer verify (revoked, device revoked, overlap over).
    # Kept out of repr: a ResolvedKey is request.auth and may reach logs or error reports.
    secrets: tuple[bytes, ...] = field(repr=False)
    revoked: bool
    # When the secrets stop verifying by themselves (a rotated key's overlap end, a key's
    # not_after): a cached ResolvedKey is refused from then on, without a new lookup.
    usable_until: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        """True while the key may verify requests."""
        return bool(self.secrets) and (self.usable_until is None or now < self.usable_until)


@dataclass(frozen=True)
class KeyReport:
    """One key in a provisioning report; `secret` is set only for a key created just now."""

    key_id: str
    secret: str | None = field(repr=False)
    device: str | None


# --- tenants ---------------------------------------------------------------------------------


def tenant_get(*, slug: str) -> Tenant:
    """The tenant with this slug (looked up in a named system scope); TenantNotFound if none.

    The one tenant-by-slug lookup: commands, the admin and services all come through here.
    """
    tenant = tenant_find(slug=slug)
    if tenant is None:
        raise TenantNotFound(f"no tenant {slug!r}")
    return tenant


def tenant_find(*, slug: str) -> Tenant | None:
    """The tenant with this slug, or None (a system-scope read: slugs are cross-tenant)."""
    with system_scope("tenant-lookup"):
        return Tenant.objects.filter(slug=slug).first()


# --- devices ---------------------------------------------------------------------------------


def device_get(*, tenant: Tenant, name: str) -> Device:
    """The tenant's device called `name`; TenantNotFound when there is none."""
    with tenant_scope(tenant.id):
        device = Device.objects.filter(tenant_id=tenant.id, name=name).first()
    if device is None:
        raise TenantNotFound(
            f"tenant {tenant.slug!r} has no device {name!r}", code="device_not_found"
        )
    return device


# --- signing keys ----------------------------------------------------------------------------


def signing_keys_active(*, tenant_id: uuid.UUID) -> tuple[KeyReport, ...]:
    """The keys a device or store system should be using now (no secrets); caller scopes."""
    keys = (
        SigningKey.objects.filter(tenant_id=tenant_id, status=SigningKey.Status.ACTIVE)
        .filter(Q(device__isnull=True) | Q(device__revoked_at__isnull=True))
        .select_related("device")
        .order_by("created_at", "id")
    )
    return tuple(
        KeyReport(key_id=k.key_id, secret=None, device=k.device.name if k.device_id else None)
        for k in keys
    )


def _usable(key: SigningKey, now: datetime) -> bool:
    if key.status == SigningKey.Status.REVOKED:
        return False
    if key.device_id is not None and key.device.revoked_at is not None:
        return False
    if key.status == SigningKey.Status.ROTATED:
        return key.not_after is not None and key.not_after > now
    return key.not_after is None or key.not_after > now


def signing_key_resolve(key_id: str) -> ResolvedKey | None:
    """Look a key up for authentication; None when no such key exists.

    The key id names its tenant, so the lookup runs in that tenant's scope. The key's usable
    secrets are returned; a key that exists but may no longer verify comes back with
    `revoked=True` and no secrets.
    """
    tenant_id = crypto.tenant_of_key_id(key_id)
    if tenant_id is None:
        return None
    now = timezone.now()
    with tenant_scope(tenant_id):
        key = (
            SigningKey.objects.select_related("tenant", "device")
            .filter(tenant_id=tenant_id, key_id=key_id)
            .first()
        )
        if key is None:
            return None
        usable = _usable(key, now)
        try:
            secret = crypto.secret_bytes(crypto.decrypt(key.secret_encrypted)) if usable else None
        except crypto.SecretUndecryptable:
            logger.error(
                "signing secret undecryptable: CODEX_SECRETS_KEY lacks the key that encrypted it "
                "(run rotate_secrets_key before removing a key)",
                extra={"key_id": key.key_id},
            )
            raise
        return ResolvedKey(
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            tenant_slug=key.tenant.slug,
            tenant_active=key.tenant.status == Tenant.Status.ACTIVE,
            device=key.device.name if key.device_id else None,
            secrets=(secret,) if secret is not None else (),
            revoked=not usable,
            usable_until=key.not_after if usable else None,
        )


def signing_key_resolve_cached(key_id: str) -> ResolvedKey | None:
    """signing_key_resolve, answered from this process's key cache while the entry is fresh.

    A database outage raises (OperationalError) and caches nothing.
    """
    found = keycache.get(key_id)
    if found is not keycache.MISSING:
        return found
    resolved = signing_key_resolve(key_id)
    keycache.put(key_id, resolved)
    return resolved
