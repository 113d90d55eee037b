"""Offboarding: a departing tenant's keys and sources revoked, its data gone, a tombstone kept."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from ingest.services.purge import deleted_count
from tenants.deletions import tenant_rows_delete
from tenants.models import SigningKey, Tenant
from tenants.scope import tenant_scope
from tenants.selectors import sources_of_tenant
from tenants.services.keys import signing_key_revoke
from tenants.services.offboarding import (
    tenant_offboard_finish,
    tenant_offboard_finished,
    tenant_offboard_start,
    tenant_secrets_wipe,
)
from tenants.services.sources import source_set_enabled
from tenants.services.tenants import tenant_suspend

logger = logging.getLogger(__name__)


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


def tenant_offboard(
    *, tenant: Tenant, actor: str, user=None, limit: int | None = None, on_batch=None
) -> Offboarding:
    """Revoke every key and source of a tenant, delete all its data in batches, keep a tombstone.

    Resumable: each step is idempotent and the deletes are batches, so after a crash the same
    call carries on where it stopped. The tenant row stays (status offboarded) with its audit
    trail. Every app's rows go through the deletion registry (tenants.deletions: each app's own
    entries, top layer first); `limit` sets the rows per statement (default: each table's own).
    `on_batch(table, n)` is called after each batch (progress output).

    The deletes run twice: at once, and again once CODEX_OFFBOARD_FENCE_S have passed since the
    suspension, by when every process has dropped the tenant's cached keys and every request
    they admitted has committed (docs/lifecycle.md), so nothing accepted meanwhile stays.
    """
    tid = str(tenant.id)
    report = Offboarding(slug=tenant.slug)
    if tenant_offboard_finished(tenant_id=tid):
        report.already_done = True
        return report
    tenant_offboard_start(tenant=tenant, actor=actor, user=user)
    _access_revoke(tenant, report, actor=actor, user=user)
    # Measured from this run's suspension: on a rerun the real one was earlier (safe side).
    fence = time.monotonic() + settings.CODEX_OFFBOARD_FENCE_S

    def progress(table: str, n: int) -> None:
        report.deleted[table] = report.deleted.get(table, 0) + n
        if on_batch is not None:
            on_batch(table, n)

    tenant_rows_delete(tenant_id=tid, limit=limit, progress=progress)
    first = sum(report.deleted.values())
    time.sleep(max(0.0, fence - time.monotonic()))
    _credentials_revoke(tenant, report, actor=actor, user=user)
    tenant_rows_delete(tenant_id=tid, limit=limit, progress=progress)
    report.late = sum(report.deleted.values()) - first
    deleted_count("offboard", report.deleted)
    tenant_offboard_finish(  # the tombstone and the final audit row together (rerun check)
        tenant=tenant,
        actor=actor,
        user=user,
        details={
            "keys_revoked": report.keys_revoked,
            "sources_disabled": report.sources_disabled,
            "secrets_wiped": report.secrets_wiped,
            "deleted": {t: n for t, n in report.deleted.items() if n},
            "deleted_after_fence": report.late,
        },
    )
    logger.info("tenant offboarded", extra={"tenant_slug": tenant.slug})
    return report
