"""Writes of signing keys: create, touch, rotate, revoke (one or many), re-encrypt every secret."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from tenants import crypto, keycache
from tenants.audit import audit_record
from tenants.errors import TenantError
from tenants.models import Device, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import KeyReport
from tenants.services.offboarding import tenant_require_not_offboarded
from tenants.services.sources import source_secrets_reencrypt

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret exists in clear outside the verifier."""

    key_id: str
    secret: str = field(repr=False)
    device: str | None


@dataclass(frozen=True)
class SecretsKeyRotation:
    """What secrets_key_rotate did."""

    total: int
    reencrypted: int


def signing_key_create(*, tenant: Tenant, device: Device | None = None) -> NewKey:
    """Create an active key for the tenant (or one of its devices); return its secret once."""
    tenant_require_not_offboarded(tenant_id=tenant.id)
    secret = crypto.new_signing_secret()
    with tenant_scope(tenant.id):
        key = SigningKey.objects.create(
            tenant=tenant,
            device=device,
            key_id=crypto.new_key_id(tenant.id),
            secret_encrypted=crypto.encrypt(secret),
        )
    return NewKey(key_id=key.key_id, secret=secret, device=device.name if device else None)


_TOUCH_SQL = """
UPDATE tenants_signingkey AS k SET last_used_at = %s
FROM unnest(%s::uuid[], %s::text[]) AS u(tenant_id, key_id)
WHERE k.tenant_id = u.tenant_id AND k.key_id = u.key_id
  AND (k.last_used_at IS NULL OR k.last_used_at < %s)
"""


def signing_key_touch(*, tenant_id: uuid.UUID, key_id: str) -> None:
    """Record that a key verified a request (at most once a minute per key, to spare writes)."""
    signing_keys_touch(keys=[(tenant_id, key_id)])


def signing_keys_touch(*, keys: Sequence[tuple[uuid.UUID, str]]) -> int:
    """Record that these (tenant id, key id) verified requests: one statement for all of them.

    A key's last_used_at moves at most once a minute (informational; it spares writes). A system
    scope: a process batches the keys of many tenants (tenants.auth). Returns the rows written.
    """
    if not keys:
        return 0
    now = timezone.now()
    with system_scope("key-touch"), connection.cursor() as cursor:
        cursor.execute(
            _TOUCH_SQL,
            [now, [t for t, _ in keys], [k for _, k in keys], now - timedelta(minutes=1)],
        )
        return cursor.rowcount


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
    not_after = timezone.now() + overlap
    with transaction.atomic():
        old = _keys_retire(tenant=tenant, device=device, not_after=not_after)
        new = signing_key_create(tenant=tenant, device=device)
        keys_changed()
        audit_record(
            actor=actor,
            user=user,
            action="signing_key.rotate",
            tenant_id=tenant.id,
            target=owner_label(tenant, device),
            old={"active": old},
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


def _keys_retire(*, tenant: Tenant, device: Device | None, not_after: datetime) -> list[str]:
    """Mark the owner's active keys rotated, verifying until `not_after`; return their ids.

    Runs inside the caller's transaction, serialised per key owner.
    """
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
            current.filter(device_id=device.id) if device else current.filter(device__isnull=True)
        )
        old = [(k.key_id, k.not_after) for k in current]
        for key_id, key_not_after in old:
            end = not_after if key_not_after is None else min(not_after, key_not_after)
            SigningKey.objects.filter(tenant_id=tenant.id, key_id=key_id).update(
                status=SigningKey.Status.ROTATED, not_after=end
            )
    return [key_id for key_id, _ in old]


def signing_key_revoke(*, key: SigningKey, actor: str, user=None) -> bool:
    """Revoke one key at once; return False when it was already revoked."""
    with transaction.atomic(), tenant_scope(key.tenant_id):
        changed = (
            SigningKey.objects.filter(tenant_id=key.tenant_id, key_id=key.key_id)
            .exclude(status=SigningKey.Status.REVOKED)
            .update(status=SigningKey.Status.REVOKED)
        )
        if changed:
            keys_changed()
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


@dataclass(frozen=True)
class KeysRotation:
    """What keys_rotate_many did: the new keys (secrets shown once), the keys it passed over."""

    new_keys: tuple[KeyReport, ...]
    skipped: tuple[str, ...]
    tenant_slugs: tuple[str, ...]


def keys_rotate_many(
    *, keys: QuerySet[SigningKey], overlap: timedelta, actor: str, user=None
) -> KeysRotation:
    """Rotate the owner (tenant or device) of each key once, all or nothing.

    A key that is not active, or whose device is revoked, is skipped and named in `skipped`;
    two keys of one owner rotate it once. A TenantError anywhere rotates nothing, so no secret
    is ever shown for a partial rotation.
    """
    owners: dict[tuple, SigningKey] = {}
    skipped: list[str] = []
    for key in keys.select_related("tenant", "device"):
        if key.status != SigningKey.Status.ACTIVE or (key.device and key.device.revoked_at):
            skipped.append(key.key_id)
            continue
        owners.setdefault((key.tenant_id, key.device_id), key)
    new_keys: list[KeyReport] = []
    with transaction.atomic():
        for key in owners.values():
            new = signing_key_rotate(
                tenant=key.tenant, device=key.device, overlap=overlap, actor=actor, user=user
            )
            new_keys.append(KeyReport(key_id=new.key_id, secret=new.secret, device=new.device))
    return KeysRotation(
        new_keys=tuple(new_keys),
        skipped=tuple(skipped),
        tenant_slugs=tuple(sorted({k.tenant.slug for k in owners.values()})),
    )


@transaction.atomic
def keys_revoke_many(*, keys: Iterable[SigningKey], actor: str, user=None) -> list[str]:
    """Revoke each key, all or nothing; the ids of those that were not revoked yet."""
    return [k.key_id for k in keys if signing_key_revoke(key=k, actor=actor, user=user)]


def keys_changed() -> None:
    """Resolved keys cached by this process are stale: forget them now and again at commit."""
    # Now: nothing in this process keeps using them; at commit: a request that re-read the old
    # row before the commit must not keep it for a whole TTL.
    keycache.clear()
    keycache.clear_on_commit()


def owner_label(tenant: Tenant, device: Device | None) -> str:
    """How the audit log names a key owner: 'slug/device' or 'slug (tenant key)'."""
    return f"{tenant.slug}/{device.name}" if device else f"{tenant.slug} (tenant key)"


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
                if not token:  # wiped by offboarding: nothing to re-encrypt
                    continue
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
    # Webhook source secrets and API keys are under the same key (tenants.services.sources).
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
