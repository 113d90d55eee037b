"""Celery tasks of the ingest app: enrichment with retry/DLQ, and the sweeper (beat)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from flags.selectors import effective_flags
from ingest import metrics, services

logger = logging.getLogger(__name__)


def retry_countdown(attempt: int) -> float:
    """Exponential backoff before retry number `attempt` (1, 2, 3, ...): base, 2x base, 4x ..."""
    base = float(getattr(settings, "CODEX_ENRICH_RETRY_BASE_S", 2.0))
    return base * 2 ** (attempt - 1)


@shared_task(
    name="ingest.tasks.enrich_events",
    bind=True,
    # PostgreSQL unreachable: retry the whole task; the ledger still has every event.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def enrich_events(
    self, tenant_id: str, event_ids: list[int], attempt: int = 1, first_failed_at: str | None = None
) -> dict[str, int]:
    """Enrich events of one tenant; failed events retry with backoff up to retryCap, then DLQ."""
    outcome = services.events_enrich(tenant_id=tenant_id, event_ids=event_ids)
    if outcome.failed:
        first = first_failed_at or timezone.now().isoformat()
        retry_cap = int(effective_flags(tenant_id=tenant_id)["retryCap"])
        failed_ids = sorted(outcome.failed)
        if attempt <= retry_cap:
            metrics.ENRICH.labels(outcome="retried").inc(len(failed_ids))
            logger.info(
                "enrichment failed; retrying",
                extra={"attempt": attempt, "events": len(failed_ids), "retry_cap": retry_cap},
            )
            enrich_events.apply_async(
                args=(tenant_id, failed_ids),
                kwargs={"attempt": attempt + 1, "first_failed_at": first},
                countdown=retry_countdown(attempt),
            )
        else:
            services.deadletter_record(
                tenant_id=tenant_id,
                failures=outcome.failed,
                attempts=attempt,
                first_failed_at=datetime.fromisoformat(first),
            )
    return {
        "enriched": len(outcome.enriched),
        "skipped": len(outcome.skipped),
        "failed": len(outcome.failed),
    }


@shared_task(name="ingest.tasks.sweep_unenriched")
def sweep_unenriched() -> int:
    """Beat, every minute: enqueue accepted events still not enriched after 2 minutes."""
    found = services.events_sweep_unenriched()
    enqueued = 0
    for tenant_id, ids in found.items():
        for start in range(0, len(ids), services.ENQUEUE_CHUNK):
            chunk = ids[start : start + services.ENQUEUE_CHUNK]
            if services.enqueue_enrichment(tenant_id=tenant_id, event_ids=chunk):
                enqueued += len(chunk)
    if enqueued:
        metrics.SWEEP_ENQUEUED.inc(enqueued)
        logger.info("sweeper re-enqueued events", extra={"events": enqueued})
    services.deadletter_depth_refresh()
    return enqueued
