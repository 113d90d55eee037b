"""Writes and lookups for tenants, devices and signing keys (typed, keyword-only)."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from tenants import crypto, keycache
from tenants.audit import audit_record
from tenants.models import Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.sources import source_secrets_reencrypt

logger = logging.getLogger(__name__)


class TenantError(Exception):
    """An operator request that cannot be carried out (message is safe to show)."""


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret exists in clear outside the verifier."""

    key_id: str
    secret: str = field(repr=False)
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


# --- signing keys ----------------------------------------------------------------------------


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


def signing_key_touch(*, tenant_id: uuid.UUID, key_id: str) -> None:
    """Record that a key verified a request (at most once a minute per key, to spare writes)."""
    now = timezone.now()
    with tenant_scope(tenant_id):
        SigningKey.objects.filter(tenant_id=tenant_id, key_id=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1))
        ).update(last_used_at=now)


def signing_key_rotate(
    *,
    tenant: Tenant,
    device: Device | None = None,
    overlap: timedelta,
    actor: str,
    user=None,
) -> NewKey:
    """Issue a new key for the tenant (or device); its current keys verify until now + overlap.

    Keys already rotated keep their own, earlier end. The new secret is returned once.
    """
    if overlap < timedelta(0):
        raise TenantError("overlap must not be negative")
    now = timezone.now()
    not_after = now + overlap
    with transaction.atomic():
        with tenant_scope(tenant.id):
            # One rotation per key owner at a time: two racing ones would each add an active key.
            owner = f"codex.rotate:{tenant.id}:{device.id if device else 'tenant'}"
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [owner])
            if device is not None:
                # Re-read under a lock: a revocation racing this rotation must win.
                device = Device.objects.select_for_update().get(tenant_id=tenant.id, id=device.id)
                if device.revoked_at is not None:
                    raise TenantError(f"device {device.name!r} is revoked; it gets no new keys")
            current = SigningKey.objects.select_for_update().filter(
                tenant_id=tenant.id, status=SigningKey.Status.ACTIVE
            )
            current = (
                current.filter(device_id=device.id)
                if device
                else current.filter(device__isnull=True)
            )
            old = [(k.key_id, k.not_after) for k in current]
            for key_id, key_not_after in old:
                end = not_after if key_not_after is None else min(not_after, key_not_after)
                SigningKey.objects.filter(tenant_id=tenant.id, key_id=key_id).update(
                    status=SigningKey.Status.ROTATED, not_after=end
                )
        new = signing_key_create(tenant=tenant, device=device)
        _keys_changed()
        audit_record(
            actor=actor,
            user=user,
            action="signing_key.rotate",
            tenant_id=tenant.id,
            target=_owner_label(tenant, device),
            old={"active": [key_id for key_id, _ in old]},
            new={
                "active": new.key_id,
                "rotated_until": not_after.isoformat(),
                "overlap_seconds": int(overlap.total_seconds()),
            },
        )
    logger.info(
        "signing key rotated",
        extra={"tenant_slug": tenant.slug, "key_id": new.key_id, "rotated": len(old)},
    )
    return new


def signing_key_revoke(*, key: SigningKey, actor: str, user=None) -> bool:
    """Revoke one key at once; return False when it was already revoked."""
    with transaction.atomic(), tenant_scope(key.tenant_id):
        changed = (
            SigningKey.objects.filter(tenant_id=key.tenant_id, key_id=key.key_id)
            .exclude(status=SigningKey.Status.REVOKED)
            .update(status=SigningKey.Status.REVOKED)
        )
        if changed:
            _keys_changed()
            audit_record(
                actor=actor,
                user=user,
                action="signing_key.revoke",
                tenant_id=key.tenant_id,
                target=key.key_id,
                old={"status": key.status},
                new={"status": SigningKey.Status.REVOKED},
            )
    return bool(changed)


def _keys_changed() -> None:
    """Resolved keys cached by this process are stale: forget them now and again at commit."""
    # Now: nothing in this process keeps using them; at commit: a request that re-read the old
    # row before the commit must not keep it for a whole TTL.
    keycache.clear()
    keycache.clear_on_commit()


def _owner_label(tenant: Tenant, device: Device | None) -> str:
    return f"{tenant.slug}/{device.name}" if device else f"{tenant.slug} (tenant key)"


# --- devices ---------------------------------------------------------------------------------


def device_get(*, tenant: Tenant, name: str) -> Device:
    """The tenant's device called `name`; TenantError when there is none."""
    with tenant_scope(tenant.id):
        device = Device.objects.filter(tenant_id=tenant.id, name=name).first()
    if device is None:
        raise TenantError(f"tenant {tenant.slug!r} has no device {name!r}")
    return device


def device_revoke(*, tenant: Tenant, name: str, actor: str, user=None) -> tuple[Device, int]:
    """Revoke a device and all its keys, effective at once.

    Returns the device and how many keys were revoked; revoking again changes nothing.
    """
    now = timezone.now()
    with transaction.atomic(), tenant_scope(tenant.id):
        device = Device.objects.select_for_update().filter(tenant_id=tenant.id, name=name).first()
        if device is None:
            raise TenantError(f"tenant {tenant.slug!r} has no device {name!r}")
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
        _keys_changed()
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


# --- tenants ---------------------------------------------------------------------------------

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def tenant_get(*, slug: str) -> Tenant:
    """The tenant with this slug (looked up in a named system scope); TenantError if none."""
    with system_scope("tenant-lookup"):
        tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise TenantError(f"no tenant {slug!r}")
    return tenant


def _active_keys(tenant_id: uuid.UUID) -> tuple[KeyReport, ...]:
    """The keys a device or store system should be using now (no secrets)."""
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


def _flags_provision(*, tenant_id: uuid.UUID, actor: str) -> bool:
    """Create the tenant's default runtime flags, if the flags app provides that step.

    Imported lazily and looked up with hasattr: the flags app is built in parallel and may not
    ship flags_provision_tenant yet; provisioning must work with or without it.
    """
    try:
        from flags import services as flag_services
    except ImportError:
        return False

    provision = getattr(flag_services, "flags_provision_tenant", None)
    if provision is None:
        return False
    provision(tenant_id=tenant_id, actor=actor)
    return True


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
    base_url = settings.CODEX_PUBLIC_URL
    notes: list[str] = []
    with transaction.atomic():
        with system_scope("provisioning"):
            tenant, created = Tenant.objects.get_or_create(
                slug=slug, defaults={"name": name or slug}
            )
        if not created and name and name != tenant.name:
            notes.append(f"tenant exists with name {tenant.name!r}; name left unchanged")
        if tenant.status != Tenant.Status.ACTIVE:
            notes.append(f"tenant is {tenant.status}; its keys are refused until it is resumed")
        new_keys: list[KeyReport] = []
        devices_added: list[str] = []
        if created:
            key = signing_key_create(tenant=tenant)
            new_keys.append(KeyReport(key_id=key.key_id, secret=key.secret, device=None))
            if _flags_provision(tenant_id=tenant.id, actor=actor):
                notes.append("runtime flags set up (flags.services.flags_provision_tenant)")
        for device_name in wanted:
            with tenant_scope(tenant.id):
                device, device_created = Device.objects.get_or_create(
                    tenant=tenant, name=device_name
                )
            if not device_created:
                if device.revoked_at is not None:
                    notes.append(f"device {device_name!r} exists and is revoked; left as is")
                continue
            key = signing_key_create(tenant=tenant, device=device)
            new_keys.append(KeyReport(key_id=key.key_id, secret=key.secret, device=device_name))
            devices_added.append(device_name)
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
        with tenant_scope(tenant.id):
            existing = [
                k for k in _active_keys(tenant.id) if k.key_id not in {n.key_id for n in new_keys}
            ]
    logger.info(
        "tenant provisioned" if created else "tenant provisioning re-run",
        extra={"tenant_slug": slug, "devices_added": devices_added, "tenant_created": created},
    )
    return ProvisionResult(
        tenant_id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        base_url=base_url,
        created=created,
        keys=(*existing, *new_keys),
        devices_added=tuple(devices_added),
        notes=tuple(notes),
    )


def _tenant_set_status(*, tenant: Tenant, status: str, action: str, actor: str, user) -> bool:
    with transaction.atomic(), system_scope("tenant-status"):
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if current.status == status:
            tenant.status = status
            return False
        Tenant.objects.filter(pk=tenant.pk).update(status=status)
        _keys_changed()
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
    """Make a suspended tenant active again; False if it already was active."""
    return _tenant_set_status(
        tenant=tenant, status=Tenant.Status.ACTIVE, action="tenant.resume", actor=actor, user=user
    )


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


# --- durations -------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_parse(text: str) -> timedelta:
    """Parse '30m', '24h', '7d', '0s' or combinations like '1h30m' into a timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise TenantError(f"duration {text!r} must look like 30m, 24h, 7d, 0s or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(compact))
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class SecretsKeyRotation:
    """What secrets_key_rotate did."""

    total: int
    reencrypted: int


def secrets_key_rotate(*, actor: str, batch: int = 500) -> SecretsKeyRotation:
    """Re-encrypt every stored signing secret with CODEX_SECRETS_KEY's first key (idempotent).

    Afterwards the other keys may be removed from CODEX_SECRETS_KEY. Audited with counts only.
    Raises crypto.SecretUndecryptable (naming nothing secret) when a secret decrypts with none.
    """
    total = reencrypted = 0
    last_id = 0
    while True:
        with transaction.atomic(), system_scope("secrets-key-rotate"):
            rows = list(
                SigningKey.objects.select_for_update()
                .filter(id__gt=last_id)
                .order_by("id")
                .values_list("tenant_id", "id", "key_id", "secret_encrypted")[:batch]
            )
            for tenant_id, row_id, key_id, token in rows:
                try:
                    new = crypto.reencrypt(token)
                except crypto.SecretUndecryptable:
                    logger.error("secret undecryptable during rotation", extra={"key_id": key_id})
                    raise
                if new is not None:
                    SigningKey.objects.filter(tenant_id=tenant_id, id=row_id).update(
                        secret_encrypted=new
                    )
                    reencrypted += 1
        total += len(rows)
        if len(rows) < batch:
            break
        last_id = rows[-1][1]
    # Webhook source secrets and API keys are under the same key (tenants.sources).
    source_total, source_changed = source_secrets_reencrypt()
    total += source_total
    reencrypted += source_changed
    audit_record(
        actor=actor,
        action="secrets_key.rotate",
        tenant_id=None,
        target="signing secrets",
        old={},
        new={"total": total, "reencrypted": reencrypted},
    )
    logger.info("secrets key rotated", extra={"total": total, "reencrypted": reencrypted})
    return SecretsKeyRotation(total=total, reencrypted=reencrypted)
