"""Writes of runtime flags: the one place that validates, records history and invalidates caches.

The admin, the CLI and tenant provisioning all call these functions. Every change that alters a
stored value writes a FlagChange row (who, when, tenant or global, key, old -> new) and a tenants
AuditLog row, and invalidates the cached layer it touched once the transaction commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from flags import metrics
from flags.models import FlagChange, GlobalFlag, TenantFlag
from flags.registry import FlagValueError, spec_for, specs
from flags.selectors import (
    GLOBAL_CACHE_KEY,
    local_flags_clear,
    note_cache_error,
    stored_layers,
    tenant_cache_key,
)
from flags.tasks import cache_delete
from tenants.audit import audit_record
from tenants.errors import TenantNotFound, TenantOffboarded
from tenants.models import Tenant
from tenants.scope import system_scope
from tenants.services.offboarding import tenant_require_not_offboarded

logger = logging.getLogger(__name__)

# Passed as a value to mean "remove the setting at this level" (tenant: inherit the global value;
# global: back to the built-in default).
UNSET = None


@dataclass(frozen=True)
class Change:
    """A stored flag value that changed."""

    tenant_id: uuid.UUID | None
    key: str
    old: object
    new: object
    # The values in force before and after: an unset level shows what it inherited.
    old_effective: object = None
    new_effective: object = None


def flags_global_rows_ensure(*, using: str = "default") -> None:
    """Make sure every registered flag has its global row (value NULL = built-in default)."""
    rows = GlobalFlag.objects.using(using)
    existing = set(rows.values_list("key", flat=True))
    missing = [GlobalFlag(key=key, value=None) for key in specs() if key not in existing]
    if missing:
        rows.bulk_create(missing, ignore_conflicts=True)


def flags_validate(values: Mapping[str, object]) -> dict[str, object]:
    """Validate {key: value} (None = unset); raise FlagValueError for the first bad entry."""
    if not values:
        raise FlagValueError("flags", "no flag given")
    return {
        key: (None if value is UNSET else spec_for(key).validate(value))
        for key, value in values.items()
    }


def flags_parse(pairs: Mapping[str, str]) -> dict[str, object]:
    """Parse operator text {key: "value"} into validated values (CLI, forms)."""
    return {key: spec_for(key).parse(text) for key, text in pairs.items()}


def _lock(scope: str) -> None:
    # Serialise writers of one scope so old -> new in the history is exact under concurrency.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"codex.flags:{scope}"])


# A reader that read PostgreSQL just before a change committed can put the old value back into
# the cache just after the change deleted it; a second delete a moment later closes that window,
# so a flip is never hidden for longer than the cache TTL.
SECOND_DELETE_AFTER_S = 2


def _invalidate(cache_key: str) -> None:
    local_flags_clear()
    try:
        cache.delete(cache_key)
        cache_delete.apply_async((cache_key,), countdown=SECOND_DELETE_AFTER_S, retry=False)
    # Redis (cache or broker) down: the entry expires within selectors.CACHE_TTL_SEC anyway,
    # and a change must not fail because of it.
    except Exception as exc:  # noqa: BLE001 - kombu and redis raise many types
        note_cache_error("invalidate", exc)


def _in_force(key: str, stored: object, fallback: object) -> object:
    """The value a level answers: its stored value if valid today, else what it inherits."""
    if stored is None:
        return fallback
    try:
        return spec_for(key).validate(stored)
    except FlagValueError:
        return fallback  # ignored by the selectors too


def flag_update(
    *,
    tenant_id: uuid.UUID | str | None,
    values: Mapping[str, object],
    actor: str,
    via: str,
    user=None,
    reason: str = "",
) -> list[Change]:
    """Set (or, with None, unset) flags for a tenant or, with tenant_id=None, globally.

    All values are validated before anything is written (all or nothing). Values equal to what
    is stored are skipped. Returns the changes made.
    """
    validated = flags_validate(values)
    if via not in FlagChange.Via.values:
        raise FlagValueError("via", f"must be one of {FlagChange.Via.values}")
    if not actor:
        raise FlagValueError("actor", "is required")
    tid = uuid.UUID(str(tenant_id)) if tenant_id is not None else None
    now = timezone.now()
    with system_scope("flags"):
        if tid is not None:
            changes = _tenant_flags_write(tid=tid, validated=validated, actor=actor, now=now)
            cache_key = tenant_cache_key(tid)
        else:
            changes = _global_flags_write(validated=validated, actor=actor, now=now)
            cache_key = GLOBAL_CACHE_KEY
        _changes_record(changes, actor=actor, user=user, via=via, reason=reason, now=now)
        if changes:
            # Invalidate after commit: a reader between our write and the commit would otherwise
            # put the old value straight back.
            local_flags_clear()  # this process at once; _invalidate again after commit
            transaction.on_commit(lambda: _invalidate(cache_key))
    if changes:
        logger.info(
            "flags changed",
            extra={
                "actor": actor,
                "via": via,
                "flags_tenant": str(tid) if tid else "global",
                "changes": {c.key: [c.old, c.new] for c in changes},
            },
        )
    return changes


def _tenant_flags_write(
    *, tid: uuid.UUID, validated: dict[str, object], actor: str, now
) -> list[Change]:
    """Write one tenant's overrides (serialised per tenant); the changes, with effective values."""
    if not Tenant.objects.filter(id=tid).exists():
        raise TenantNotFound(f"no tenant with id {tid}")
    try:  # an offboarded tenant keeps only its tombstone and audit rows (docs/lifecycle.md)
        tenant_require_not_offboarded(tenant_id=tid)
    except TenantOffboarded as exc:
        raise FlagValueError("tenant", exc.message) from exc
    _lock(str(tid))
    inherited = {key: spec.default for key, spec in specs().items()}
    inherited.update(stored_layers(tenant_id=None)[0])
    stored = {
        row.key: row
        for row in TenantFlag.objects.select_for_update().filter(
            tenant_id=tid, key__in=list(validated)
        )
    }
    changes: list[Change] = []
    for key, new in validated.items():
        row = stored.get(key)
        old = row.value if row is not None else None
        if old == new and type(old) is type(new):
            continue
        if new is None:
            row.delete()
        elif row is None:
            TenantFlag.objects.create(
                tenant_id=tid, key=key, value=new, updated_at=now, updated_by=actor
            )
        else:
            TenantFlag.objects.filter(tenant_id=tid, id=row.id).update(
                value=new, updated_at=now, updated_by=actor
            )
        fallback = inherited[key]
        changes.append(
            Change(tid, key, old, new, _in_force(key, old, fallback), _in_force(key, new, fallback))
        )
    return changes


def _global_flags_write(*, validated: dict[str, object], actor: str, now) -> list[Change]:
    """Write global values (serialised); the changes, with effective values."""
    _lock("global")
    flags_global_rows_ensure()
    stored = {
        row.key: row
        for row in GlobalFlag.objects.select_for_update().filter(key__in=list(validated))
    }
    changes: list[Change] = []
    for key, new in validated.items():
        old = stored[key].value
        if old == new and type(old) is type(new):
            continue
        GlobalFlag.objects.filter(key=key).update(value=new, updated_at=now, updated_by=actor)
        default = spec_for(key).default
        changes.append(
            Change(None, key, old, new, _in_force(key, old, default), _in_force(key, new, default))
        )
    return changes


def _changes_record(changes: list[Change], *, actor: str, user, via: str, reason: str, now) -> None:
    """The history of each change: a FlagChange row, an AuditLog row and the metric."""
    for change in changes:
        FlagChange.objects.create(
            tenant_id=change.tenant_id,
            key=change.key,
            old=change.old,
            new=change.new,
            old_effective=change.old_effective,
            new_effective=change.new_effective,
            actor=actor,
            actor_user=user if getattr(user, "pk", None) else None,
            via=via,
            reason=reason[:200],
            at=now,
        )
        audit_record(
            actor=actor,
            action="flag.update",
            tenant_id=change.tenant_id,
            target=change.key,
            old=change.old,
            new=change.new,
            user=user,
        )
        metrics.FLAG_CHANGES.labels(
            key=change.key, scope="tenant" if change.tenant_id else "global"
        ).inc()


def flags_set_sync_all(
    *, enabled: bool, actor: str, via: str, user=None, reason: str = ""
) -> list[Change]:
    """Pause or resume background sync for every tenant at once (the operator's big switch).

    Sets the global syncEnabled and removes tenant overrides that say the opposite, so after the
    call every tenant's effective syncEnabled is `enabled`. Each removal is in the history.
    """
    if not isinstance(enabled, bool):
        raise FlagValueError("syncEnabled", "must be true or false")
    with transaction.atomic():
        changes = flag_update(
            tenant_id=None,
            values={"syncEnabled": enabled},
            actor=actor,
            via=via,
            user=user,
            reason=reason,
        )
        with system_scope("flags"):
            opposing = list(
                TenantFlag.objects.filter(key="syncEnabled")
                .exclude(value=enabled)
                .values_list("tenant_id", flat=True)
            )
        changes += _sync_set_each(
            opposing,
            UNSET,
            actor=actor,
            via=via,
            user=user,
            reason=reason or ("resume all" if enabled else "pause all"),
        )
    return changes


def _sync_set_each(tenant_ids, value, *, actor: str, via: str, user, reason: str) -> list[Change]:
    """flag_update of syncEnabled to `value` for each tenant, in the caller's transaction."""
    changes: list[Change] = []
    for tid in tenant_ids:
        changes += flag_update(
            tenant_id=tid,
            values={"syncEnabled": value},
            actor=actor,
            via=via,
            user=user,
            reason=reason,
        )
    return changes


def flags_set_sync_many(
    *,
    tenant_ids: Iterable[uuid.UUID | str],
    enabled: bool,
    actor: str,
    via: str,
    user=None,
    reason: str = "",
) -> list[Change]:
    """Pause or resume background sync for each of these tenants, all or nothing; the changes.

    Like the other bulk writes (tenants_resume_many, sources_set_enabled_many): one transaction,
    and a refusal changes nothing. TenantOffboarded, naming every selected tenant that is or is
    being offboarded, before anything is written; TenantNotFound if one no longer exists.
    """
    if not isinstance(enabled, bool):
        raise FlagValueError("syncEnabled", "must be true or false")
    # Sorted: two bulk calls take the per-tenant locks in one order.
    tids = sorted({uuid.UUID(str(t)) for t in tenant_ids})
    refused: list[str] = []
    for tid in tids:
        try:
            tenant_require_not_offboarded(tenant_id=tid)
        except TenantOffboarded as exc:
            refused.append(exc.message)
    if refused:
        raise TenantOffboarded("; ".join(refused))
    with transaction.atomic():
        return _sync_set_each(
            tids,
            enabled,
            actor=actor,
            via=via,
            user=user,
            reason=reason or ("resume sync" if enabled else "pause sync"),
        )


def flags_provision_tenant(
    *,
    tenant_id: uuid.UUID | str,
    actor: str,
    overrides: Mapping[str, object] | None = None,
    user=None,
) -> list[Change]:
    """Flag set-up for a new tenant, called by tenants' provision_tenant.

    Tenants follow the global values until someone overrides one, so a new tenant needs no
    rows: without `overrides` this only validates that the tenant exists. With overrides (e.g.
    a pilot that starts paused) they are written through flag_update, with history.
    """
    tid = uuid.UUID(str(tenant_id))
    with system_scope("flags"):
        if not Tenant.objects.filter(id=tid).exists():
            raise TenantNotFound(f"no tenant with id {tid}")
    if not overrides:
        return []
    return flag_update(
        tenant_id=tid, values=overrides, actor=actor, via=FlagChange.Via.PROVISION, user=user
    )
