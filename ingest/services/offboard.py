"""Offboarding: a departing tenant's keys and sources revoked, its data gone, a tombstone kept."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction

from ingest.services.purge import BATCH, PARTITIONED, deleted_count, events_delete, rows_delete
from tenants.audit import audit_record
from tenants.models import AuditLog, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import sources_of_tenant
from tenants.services.keys import signing_key_revoke
from tenants.services.offboarding import OFFBOARD_STARTED, tenant_secrets_wipe
from tenants.services.sources import source_set_enabled
from tenants.services.tenants import tenant_suspend

logger = logging.getLogger(__name__)

# Tenant-owned tables that stay after offboarding: the tombstone (the tenant row, and the revoked
# keys, devices and disabled webhook sources the trail names, their secrets wiped) and the audit
# rows (the audit log, flag history). docs/lifecycle.md; tests/ingest/test_offboard.py proves
# every other tenant table empty.
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
    secrets_wiped: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    late: int = 0  # rows the second pass found (written by a request admitted before the fence)


def _offboarded(tenant_id: str) -> bool:
    with system_scope("lifecycle"):
        return AuditLog.objects.filter(tenant_id=tenant_id, action="tenant.offboard").exists()


def _access_revoke(tenant: Tenant, report: Offboarding, *, actor: str, user) -> None:
    """Nothing new gets in: suspended, every key revoked, every source off, their secrets wiped.

    This process refuses the tenant at once; the others within the key cache's TTL (the fence).
    """
    tenant_suspend(tenant=tenant, actor=actor, user=user)
    _credentials_revoke(tenant, report, actor=actor, user=user)


def _credentials_revoke(tenant: Tenant, report: Offboarding, *, actor: str, user) -> None:
    """Every key revoked, every source off, their secrets wiped.

    Run again after the fence: a key or source created while the suspension was reaching the
    other processes goes too.
    """
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
    report.secrets_wiped += tenant_secrets_wipe(tenant_id=tenant.id)


def _rows_delete(tenant_id: str, *, limit: int, progress) -> None:
    """One pass over every table: the ledger with what hangs off it, then the rest, in batches."""
    events, enriched, letters = events_delete(
        tenant_id=tenant_id, where="", params={}, erase=False, limit=limit
    )
    progress("ingest_event", events)
    progress("events_enriched", enriched)
    progress("ingest_deadletter", letters)
    # What the events' own batches did not reach (rows whose event went earlier), then the rest.
    for table in ("events_enriched", "ingest_deadletter", *_other_tenant_tables()):
        rows_delete(table, tenant_id=tenant_id, limit=limit, on_batch=progress)


def tenant_offboard(
    *, tenant: Tenant, actor: str, user=None, limit: int = BATCH, on_batch=None
) -> Offboarding:
    """Revoke every key and source of a tenant, delete all its data in batches, keep a tombstone.

    Resumable: each step is idempotent and the deletes are batches, so after a crash the same
    call carries on where it stopped. The tenant row stays (status offboarded) with its audit
    trail. `on_batch(table, n)` is called after each batch (progress output).

    The deletes run twice: at once, and again once CODEX_OFFBOARD_FENCE_S have passed since the
    suspension, by when every process has dropped the tenant's cached keys and every request
    they admitted has committed (docs/lifecycle.md), so nothing accepted meanwhile stays.
    """
    tid = str(tenant.id)
    report = Offboarding(slug=tenant.slug)
    if _offboarded(tid):
        report.already_done = True
        return report
    audit_record(actor=actor, user=user, action=OFFBOARD_STARTED, tenant_id=tid, target=tenant.slug)
    _access_revoke(tenant, report, actor=actor, user=user)
    # Measured from this run's suspension: on a rerun the real one was earlier (safe side).
    fence = time.monotonic() + settings.CODEX_OFFBOARD_FENCE_S

    def progress(table: str, n: int) -> None:
        report.deleted[table] = report.deleted.get(table, 0) + n
        if on_batch is not None:
            on_batch(table, n)

    _rows_delete(tid, limit=limit, progress=progress)
    first = sum(report.deleted.values())
    time.sleep(max(0.0, fence - time.monotonic()))
    _credentials_revoke(tenant, report, actor=actor, user=user)
    _rows_delete(tid, limit=limit, progress=progress)
    report.late = sum(report.deleted.values()) - first
    deleted_count("offboard", report.deleted)
    with transaction.atomic():  # the tombstone and the final audit row together (rerun check)
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
                "secrets_wiped": report.secrets_wiped,
                "deleted": {t: n for t, n in report.deleted.items() if n},
                "deleted_after_fence": report.late,
            },
        )
    logger.info("tenant offboarded", extra={"tenant_slug": tenant.slug})
    return report
