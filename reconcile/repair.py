"""Heal what reconcile finds: make a window's pending events due now and wake their drain."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ingest import wake
from tenants.audit import audit_record
from tenants.scope import tenant_scope

logger = logging.getLogger(__name__)

# Pending = received in the window, not enriched, no open dead letter (those are the DLQ's to
# replay: replay_dlq). A pending event waiting out a retry backoff is made due now.
_PENDING_DUE_SQL = """
UPDATE ingest_event e SET enrich_retry_at = NULL
WHERE e.tenant_id = %(tenant)s::uuid
  AND e.received_at >= %(start)s AND e.received_at < %(end)s
  AND e.enriched_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM ingest_deadletter d
      WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.resolved_at IS NULL
  )
RETURNING e.id
"""


@dataclass(frozen=True)
class RepairReport:
    """What one repair did for one tenant's window."""

    tenant: str
    day: str
    window_start: datetime
    window_end: datetime
    pending: int  # events found pending (and made due now)
    enqueued: bool  # the drain wake-up was published (else the sweeper wakes it within ~3 min)

    def as_json(self) -> dict:
        return {
            "tenant": self.tenant,
            "day": self.day,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "pending": self.pending,
            "enqueued": self.enqueued,
        }


def reconcile_repair(
    *,
    tenant_id: uuid.UUID | str,
    slug: str,
    day: str,
    window_start: datetime,
    window_end: datetime,
    actor: str,
    user=None,
) -> RepairReport:
    """Enqueue enrichment for the pending events of one tenant's reconcile window (audited)."""
    params = {"tenant": str(tenant_id), "start": window_start, "end": window_end}
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(_PENDING_DUE_SQL, params)
        pending = len(cursor.fetchall())
    enqueued = wake.publish([str(tenant_id)]) if pending else False
    report = RepairReport(slug, day, window_start, window_end, pending, enqueued)
    audit_record(
        actor=actor,
        action="reconcile.repair",
        tenant_id=tenant_id,
        target=f"{slug} {day}",
        old={"pending": pending},
        new={"made_due": pending, "drain_enqueued": enqueued},
        user=user,
    )
    logger.info("reconcile repair", extra={"tenant": slug, "day": day, "pending": pending})
    return report
