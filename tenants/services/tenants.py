"""Writes of tenants: provisioning (tenant, keys, devices), suspend/resume (one or many), rename."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from tenants.audit import audit_record
from tenants.errors import TenantError
from tenants.models import Device, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import KeyReport, signing_keys_active
from tenants.services.keys import keys_changed, signing_key_create
from tenants.services.offboarding import tenant_require_not_offboarded
from tenants.signals import tenant_provisioned

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ProvisionResult:
    """What tenant_provision did (or found)."""

    tenant_id: uuid.UUID
    slug: str
    name: str
    base_url: str
    created: bool
    keys: tuple[KeyReport, ...]
    devices_added: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict:
        """The `provision_tenant --json` document (the SDK's `login --from-json` reads it)."""
        return {
            "tenant_id": str(self.tenant_id),
            "slug": self.slug,
            "base_url": self.base_url,
            "created": self.created,
            "keys": [
                {"key_id": k.key_id, "secret": k.secret, "device": k.device} for k in self.keys
            ],
        }


def tenant_provision(
    *,
    slug: str,
    name: str | None = None,
    devices: tuple[str, ...] | list[str] = (),
    actor: str = "cli",
    user=None,
) -> ProvisionResult:
    """Create a tenant with its tenant key, default flags and one device + key per device name.

    Idempotent: for an existing tenant nothing is created or changed except devices not there
    yet (each with a new key); existing keys are reported without secrets. All of it is one
    transaction, so a failure leaves nothing half-provisioned.
    """
    wanted = _provision_names_check(slug=slug, devices=devices)
    notes: list[str] = []
    with transaction.atomic():
        tenant, created = _tenant_get_or_create(slug=slug, name=name, notes=notes)
        if not created:
            tenant_require_not_offboarded(tenant_id=tenant.id)
        new_keys: list[KeyReport] = []
        if created:
            key = signing_key_create(tenant=tenant)
            new_keys.append(KeyReport(key_id=key.key_id, secret=key.secret, device=None))
            for _, note in tenant_provisioned.send(
                sender=Tenant, tenant_id=tenant.id, actor=actor, user=user
            ):
                if note:
                    notes.append(note)
        devices_added = _devices_add(tenant=tenant, names=wanted, new_keys=new_keys, notes=notes)
        if created or devices_added:
            audit_record(
                actor=actor,
                user=user,
                action="tenant.provision" if created else "tenant.add_devices",
                tenant_id=tenant.id,
                target=slug,
                new={
                    "name": tenant.name,
                    "devices": devices_added,
                    "keys": [k.key_id for k in new_keys],
                },
            )
        new_ids = {k.key_id for k in new_keys}
        with tenant_scope(tenant.id):
            existing = [
                k for k in signing_keys_active(tenant_id=tenant.id) if k.key_id not in new_ids
            ]
    logger.info(
        "tenant provisioned" if created else "tenant provisioning re-run",
        extra={"tenant_slug": slug, "devices_added": devices_added, "tenant_created": created},
    )
    return ProvisionResult(
        tenant_id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        base_url=settings.CODEX_PUBLIC_URL,
        created=created,
        keys=(*existing, *new_keys),
        devices_added=tuple(devices_added),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class TenantCreated:
    """A tenant tenant_create made: the saved row and its new key, whose secret is shown once."""

    tenant: Tenant
    keys: tuple[KeyReport, ...]


def tenant_create(*, slug: str, name: str, actor: str, user=None) -> TenantCreated:
    """Provision a tenant that does not exist yet (the admin's add); TenantError if it does."""
    result = tenant_provision(slug=slug, name=name, actor=actor, user=user)
    if not result.created:
        raise TenantError(f"tenant {slug!r} already exists")
    with system_scope("provisioning"):
        tenant = Tenant.objects.get(pk=result.tenant_id)
    return TenantCreated(tenant=tenant, keys=tuple(k for k in result.keys if k.secret))


def _provision_names_check(*, slug: str, devices) -> list[str]:
    """Refuse a bad slug or device name before anything is written; the device names, deduped."""
    if not SLUG_RE.match(slug):
        raise TenantError(
            f"slug {slug!r} must be 1-63 lower-case letters, digits or '-' (not at either end)"
        )
    wanted = list(dict.fromkeys(devices))
    for device_name in wanted:
        if not DEVICE_RE.match(device_name):
            raise TenantError(
                f"device name {device_name!r} must be 1-100 letters, digits, '.', '_' or '-'"
            )
    return wanted


def _tenant_get_or_create(*, slug: str, name: str | None, notes: list[str]) -> tuple[Tenant, bool]:
    with system_scope("provisioning"):
        tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    if not created and name and name != tenant.name:
        notes.append(f"tenant exists with name {tenant.name!r}; name left unchanged")
    if tenant.status != Tenant.Status.ACTIVE:
        notes.append(f"tenant is {tenant.status}; its keys are refused until it is resumed")
    return tenant, created


def _devices_add(
    *, tenant: Tenant, names: list[str], new_keys: list[KeyReport], notes: list[str]
) -> list[str]:
    """Create the devices not there yet, each with a key (appended to new_keys); their names."""
    added: list[str] = []
    for device_name in names:
        with tenant_scope(tenant.id):
            device, device_created = Device.objects.get_or_create(tenant=tenant, name=device_name)
        if not device_created:
            if device.revoked_at is not None:
                notes.append(f"device {device_name!r} exists and is revoked; left as is")
            continue
        key = signing_key_create(tenant=tenant, device=device)
        new_keys.append(KeyReport(key_id=key.key_id, secret=key.secret, device=device_name))
        added.append(device_name)
    return added


def _tenant_set_status(*, tenant: Tenant, status: str, action: str, actor: str, user) -> bool:
    with transaction.atomic(), system_scope("tenant-status"):
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if current.status in (status, Tenant.Status.OFFBOARDED):  # a tombstone stays one
            tenant.status = current.status
            return False
        Tenant.objects.filter(pk=tenant.pk).update(status=status)
        keys_changed()
        audit_record(
            actor=actor,
            user=user,
            action=action,
            tenant_id=tenant.id,
            target=tenant.slug,
            old={"status": current.status},
            new={"status": status},
        )
    tenant.status = status
    logger.info("tenant status changed", extra={"tenant_slug": tenant.slug, "status": status})
    return True


def tenant_suspend(*, tenant: Tenant, actor: str, user=None) -> bool:
    """Suspend a tenant (its requests get 403 tenant_suspended); False if it already was."""
    return _tenant_set_status(
        tenant=tenant,
        status=Tenant.Status.SUSPENDED,
        action="tenant.suspend",
        actor=actor,
        user=user,
    )


def tenant_resume(*, tenant: Tenant, actor: str, user=None) -> bool:
    """Make a suspended tenant active again; False if it already was active.

    TenantOffboarded for a tenant that is (or is being) offboarded: offboarding is final.
    """
    tenant_require_not_offboarded(tenant_id=tenant.id)
    return _tenant_set_status(
        tenant=tenant, status=Tenant.Status.ACTIVE, action="tenant.resume", actor=actor, user=user
    )


@transaction.atomic
def tenants_suspend_many(*, tenants: Iterable[Tenant], actor: str, user=None) -> list[str]:
    """Suspend each tenant, all or nothing; the slugs of those that were not suspended yet."""
    return [t.slug for t in tenants if tenant_suspend(tenant=t, actor=actor, user=user)]


@transaction.atomic
def tenants_resume_many(*, tenants: Iterable[Tenant], actor: str, user=None) -> list[str]:
    """Resume each tenant, all or nothing; the slugs of those that were not active yet.

    TenantOffboarded (nothing resumed) when one of them is or is being offboarded.
    """
    return [t.slug for t in tenants if tenant_resume(tenant=t, actor=actor, user=user)]


def tenant_rename(*, tenant: Tenant, name: str, actor: str, user=None) -> bool:
    """Change a tenant's display name (the slug never changes); audited."""
    with transaction.atomic(), system_scope("tenant-rename"):
        old = Tenant.objects.select_for_update().get(pk=tenant.pk).name
        if old == name:
            return False
        Tenant.objects.filter(pk=tenant.pk).update(name=name)
        audit_record(
            actor=actor,
            user=user,
            action="tenant.rename",
            tenant_id=tenant.id,
            target=tenant.slug,
            old={"name": old},
            new={"name": name},
        )
    tenant.name = name
    return True
