"""Celery tasks of the ingest app: the enrichment drain and the sweeper (beat)."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from codex.db import roles
from ingest import ingest_warnings, metrics, partitions, selectors, wake
from ingest.services import retention
from ingest.services.deadletters import deadletter_depth_refresh
from ingest.services.enrich import DRAIN_BATCH, events_drain

logger = logging.getLogger(__name__)

# One task drains for at most this long, then hands the rest to a fresh task, so a huge backlog
# never holds a worker slot past the time limits, and other queued work gets its turn.
DRAIN_BUDGET_S = 20.0


@shared_task(
    name="ingest.tasks.drain",
    # PostgreSQL unreachable: retry the whole task; the ledger still has every event.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
    soft_time_limit=DRAIN_BUDGET_S + 40,
    time_limit=DRAIN_BUDGET_S + 60,
)
def drain(tenant_ids: list[str]) -> dict[str, int]:
    """Enrich the due events of these tenants, one batch per tenant in turn, until none is left.

    Failed events come back after their backoff: a delayed drain is scheduled for the earliest.
    """
    started = time.monotonic()
    active = list(dict.fromkeys(tenant_ids))
    totals = {"enriched": 0, "failed": 0, "dead_lettered": 0}
    retry_in: float | None = None
    retrying: list[str] = []
    while active and time.monotonic() - started < DRAIN_BUDGET_S:
        still = []
        for tenant_id in active:
            outcome = events_drain(tenant_id=tenant_id)
            totals["enriched"] += len(outcome.enriched)
            totals["failed"] += len(outcome.failed)
            totals["dead_lettered"] += len(outcome.dead_lettered)
            if outcome.retry_in is not None:
                retrying.append(tenant_id)
                retry_in = outcome.retry_in if retry_in is None else min(retry_in, outcome.retry_in)
            if outcome.claimed == DRAIN_BATCH:
                still.append(tenant_id)  # a full batch: there may be more
        active = still
    if active:
        wake.publish(active)  # out of budget with work left: a fresh task carries on
    if retry_in is not None:
        wake.publish(list(dict.fromkeys(retrying)), countdown=retry_in)
    return totals


@shared_task(name="ingest.tasks.enrich_events")
def enrich_events(tenant_id: str, event_ids: list[int], *_, **__) -> dict[str, int]:
    """Messages queued by releases before the drain: drain their tenant (the ledger has the ids)."""
    return drain([tenant_id])


@shared_task(name="ingest.tasks.sweep_unenriched", soft_time_limit=50, time_limit=55)
def sweep_unenriched() -> int:
    """Beat, every minute: wake the drain of tenants with due events not enriched after 2 min."""
    found = selectors.events_unenriched_by_tenant()
    woken = sum(found.values()) if found and wake.publish(sorted(found)) else 0
    if woken:
        metrics.SWEEP_ENQUEUED.inc(woken)
        logger.info("sweeper woke enrichment", extra={"events": woken, "tenants": len(found)})
    deadletter_depth_refresh()
    return woken


@shared_task(name="ingest.tasks.warnings_prune", soft_time_limit=240, time_limit=270)
def warnings_prune() -> int:
    """Delete ingestion warnings past their retention (beat, hourly)."""
    return ingest_warnings.ingest_warnings_prune()


@shared_task(name="ingest.tasks.partitions_ensure", soft_time_limit=240, time_limit=300)
def partitions_ensure() -> list[str]:
    """Beat, daily: the ledger's and events_enriched's month partitions exist 3 months ahead."""
    # DDL needs the owner: owner mode logs in with DATABASE_OWNER_URL behind PgBouncer, and drops
    # the SET ROLE otherwise (codex.db.roles).
    with roles.owner_mode():
        return partitions.partitions_ensure().created


@shared_task(
    name="ingest.tasks.retention_enforce", soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60
)
def retention_enforce() -> dict[str, int]:
    """Beat, nightly: remove what each tenant's retentionDays no longer keeps."""
    report = retention.retention_enforce(actor="beat:retention")
    return {
        "tenants": len(report.tenants),
        "events": sum(t.events for t in report.tenants),
        "partitions_dropped": len(report.partitions_dropped),
    }
