"""Writes of devices: revoking one or many (and every key each has)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from codex import error_codes as codes
from tenants.audit import audit_record
from tenants.models import Device, SigningKey, Tenant
from tenants.scope import tenant_scope
from tenants.services.keys import keys_changed

logger = logging.getLogger(__name__)


def device_revoke(*, tenant: Tenant, name: str, actor: str, user=None) -> tuple[Device, int]:
    """Revoke a device and all its keys, effective at once.

    Returns the device and how many keys were revoked; revoking again changes nothing.
    """
    now = timezone.now()
    with transaction.atomic(), tenant_scope(tenant.id):
        device = Device.objects.select_for_update().filter(tenant_id=tenant.id, name=name).first()
        if device is None:
            raise codes.DEVICE_NOT_FOUND.error(f"tenant {tenant.slug!r} has no device {name!r}")
        revoked_keys = list(
            SigningKey.objects.filter(tenant_id=tenant.id, device_id=device.id)
            .exclude(status=SigningKey.Status.REVOKED)
            .values_list("key_id", flat=True)
        )
        if device.revoked_at is not None and not revoked_keys:
            return device, 0
        old_revoked_at = device.revoked_at
        if device.revoked_at is None:
            device.revoked_at = now
            Device.objects.filter(tenant_id=tenant.id, id=device.id).update(revoked_at=now)
        SigningKey.objects.filter(tenant_id=tenant.id, key_id__in=revoked_keys).update(
            status=SigningKey.Status.REVOKED
        )
        keys_changed()
        audit_record(
            actor=actor,
            user=user,
            action="device.revoke",
            tenant_id=tenant.id,
            target=f"{tenant.slug}/{name}",
            old={"revoked_at": old_revoked_at.isoformat() if old_revoked_at else None},
            new={"revoked_at": device.revoked_at.isoformat(), "revoked_keys": revoked_keys},
        )
    logger.info("device revoked", extra={"tenant_slug": tenant.slug, "device": name})
    return device, len(revoked_keys)


@transaction.atomic
def devices_revoke_many(
    *, devices: QuerySet[Device], actor: str, user=None
) -> list[tuple[str, int]]:
    """Revoke each device and its keys, all or nothing; ('slug/name', keys revoked) per device."""
    done = []
    for device in devices.select_related("tenant"):
        _, revoked = device_revoke(tenant=device.tenant, name=device.name, actor=actor, user=user)
        done.append((f"{device.tenant.slug}/{device.name}", revoked))
    return done
