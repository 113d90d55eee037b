"""Offboarding: a departing tenant's keys and sources revoked, its data gone, a tombstone kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist

from ingest.services.purge import BATCH, PARTITIONED, deleted_count, events_delete, rows_delete
from tenants.audit import audit_record
from tenants.models import AuditLog, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import sources_of_tenant
from tenants.services.keys import signing_key_revoke
from tenants.services.sources import source_set_enabled
from tenants.services.tenants import tenant_suspend

logger = logging.getLogger(__name__)

# Tenant-owned tables that stay after offboarding: the tombstone and its audit trail, the
# (revoked) keys and devices and (disabled) webhook sources the trail names, flag history.
_KEPT = frozenset(
    {
        "tenants_tenant",
        "tenants_auditlog",
        "tenants_signingkey",
        "tenants_device",
        "tenants_webhooksource",
        "flags_flagchange",
    }
)


def _other_tenant_tables() -> list[str]:
    """Every other tenant-owned table, in any app (found through the models, no imports)."""
    tables = set()
    for model in apps.get_models():
        try:
            field_ = model._meta.get_field("tenant")
        except FieldDoesNotExist:
            continue
        if getattr(field_.remote_field, "model", None) is Tenant:
            tables.add(model._meta.db_table)
    return sorted(tables - _KEPT - PARTITIONED - {"ingest_deadletter"})


@dataclass
class Offboarding:
    """What tenant_offboard did (deleted rows per table, keys revoked, sources disabled)."""

    slug: str
    already_done: bool = False
    keys_revoked: int = 0
    sources_disabled: int = 0
    deleted: dict[str, int] = field(default_factory=dict)


def _offboarded(tenant_id: str) -> bool:
    with system_scope("lifecycle"):
        return AuditLog.objects.filter(tenant_id=tenant_id, action="tenant.offboard").exists()


def _access_revoke(tenant: Tenant, report: Offboarding, *, actor: str, user) -> None:
    """Nothing new gets in: suspended (403 at once), then every key revoked, every source off."""
    tenant_suspend(tenant=tenant, actor=actor, user=user)
    with tenant_scope(tenant.id):
        keys = list(
            SigningKey.objects.filter(tenant_id=tenant.id).exclude(status=SigningKey.Status.REVOKED)
        )
    for key in keys:
        report.keys_revoked += int(signing_key_revoke(key=key, actor=actor, user=user))
    for source in sources_of_tenant(tenant_id=tenant.id):
        if source.enabled:
            source_set_enabled(source_id=source.source_id, enabled=False, actor=actor, user=user)
            report.sources_disabled += 1


def tenant_offboard(
    *, tenant: Tenant, actor: str, user=None, limit: int = BATCH, on_batch=None
) -> Offboarding:
    """Revoke every key and source of a tenant, delete all its data in batches, keep a tombstone.

    Resumable: each step is idempotent and the deletes are batches, so after a crash the same
    call carries on where it stopped. The tenant row stays (status offboarded) with its audit
    trail. `on_batch(table, n)` is called after each batch (progress output).
    """
    tid = str(tenant.id)
    report = Offboarding(slug=tenant.slug)
    if _offboarded(tid):
        report.already_done = True
        return report
    audit_record(
        actor=actor, user=user, action="tenant.offboard.start", tenant_id=tid, target=tenant.slug
    )
    _access_revoke(tenant, report, actor=actor, user=user)

    def progress(table: str, n: int) -> None:
        report.deleted[table] = report.deleted.get(table, 0) + n
        if on_batch is not None:
            on_batch(table, n)

    events, enriched, letters = events_delete(
        tenant_id=tid, where="", params={}, erase=False, limit=limit
    )
    progress("ingest_event", events)
    progress("events_enriched", enriched)
    progress("ingest_deadletter", letters)
    # What the events' own batches did not reach (rows whose event went earlier), then the rest.
    for table in ("events_enriched", "ingest_deadletter", *_other_tenant_tables()):
        rows_delete(table, tenant_id=tid, limit=limit, on_batch=progress)
    deleted_count("offboard", report.deleted)
    with system_scope("lifecycle"):
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDED)
    audit_record(
        actor=actor,
        user=user,
        action="tenant.offboard",
        tenant_id=tid,
        target=tenant.slug,
        old={"status": tenant.status},
        new={
            "status": Tenant.Status.OFFBOARDED,
            "keys_revoked": report.keys_revoked,
            "sources_disabled": report.sources_disabled,
            "deleted": {t: n for t, n in report.deleted.items() if n},
        },
    )
    logger.info("tenant offboarded", extra={"tenant_slug": tenant.slug})
    return report
