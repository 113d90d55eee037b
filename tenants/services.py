"""Writes and lookups for tenants, devices and signing keys (typed, keyword-only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from tenants import crypto
from tenants.models import Device, SigningKey, Tenant
from tenants.scope import tenant_scope


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret exists in clear outside the verifier."""

    key_id: str
    secret: str
    device: str | None


@dataclass(frozen=True)
class ResolvedKey:
    """What authentication needs to verify a request signed with `key_id`."""

    key_id: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_active: bool
    device: str | None
    # Empty when the key exists but may no longer verify (revoked, device revoked, overlap over).
    secrets: tuple[bytes, ...]
    revoked: bool


def signing_key_create(*, tenant: Tenant, device: Device | None = None) -> NewKey:
    """Create an active key for the tenant (or one of its devices); return its secret once."""
    secret = crypto.new_signing_secret()
    with tenant_scope(tenant.id):
        key = SigningKey.objects.create(
            tenant=tenant,
            device=device,
            key_id=crypto.new_key_id(tenant.id),
            secret_encrypted=crypto.encrypt(secret),
        )
    return NewKey(key_id=key.key_id, secret=secret, device=device.name if device else None)


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
        return ResolvedKey(
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            tenant_slug=key.tenant.slug,
            tenant_active=key.tenant.status == Tenant.Status.ACTIVE,
            device=key.device.name if key.device_id else None,
            secrets=(crypto.secret_bytes(crypto.decrypt(key.secret_encrypted)),) if usable else (),
            revoked=not usable,
        )


def signing_key_touch(*, tenant_id: uuid.UUID, key_id: str) -> None:
    """Record that a key verified a request (at most once a minute per key, to spare writes)."""
    now = timezone.now()
    with tenant_scope(tenant_id):
        SigningKey.objects.filter(tenant_id=tenant_id, key_id=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1))
        ).update(last_used_at=now)
