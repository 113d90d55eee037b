"""Re-enriching a window's pending events now (reconcile's repair: ingest writes its own ledger).

Pending is what reconcile counts as pending: received in the window, no events_enriched row,
no open dead letter (those are the DLQ's to replay). That includes events the ledger marks
enriched (`ingest_event.enriched_at`) whose events_enriched row was later deleted or lost:
their marker is cleared so that the enrichment service takes them again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from ingest import wake
from ingest.services.enrich import DRAIN_BATCH, events_enrich
from tenants.scope import tenant_scope

# One batch of a window's pending events, in (received_at, id) order after the last batch's:
# made due again (marker and retry backoff cleared) and locked for this transaction. SKIP LOCKED:
# a row a drain holds is being enriched right now. `lost`: the ledger had it marked enriched.
_PENDING_BATCH_SQL = """
WITH pending AS MATERIALIZED (
    SELECT e.id, e.received_at, e.enriched_at IS NOT NULL AS lost
    FROM ingest_event e
    WHERE e.tenant_id = %(tenant)s::uuid
      AND e.received_at >= %(start)s AND e.received_at < %(end)s
      AND (e.received_at, e.id) > (%(after_at)s, %(after_id)s)
      AND NOT EXISTS (
          SELECT 1 FROM events_enriched ee
          WHERE ee.tenant_id = e.tenant_id AND ee.event_id = e.id
            AND ee.received_at = e.received_at
      )
      AND NOT EXISTS (
          SELECT 1 FROM ingest_deadletter d
          WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.resolved_at IS NULL
      )
    ORDER BY e.received_at, e.id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF e SKIP LOCKED
)
UPDATE ingest_event e SET enriched_at = NULL, enrich_retry_at = NULL
FROM pending p
WHERE e.tenant_id = %(tenant)s::uuid AND e.id = p.id AND e.received_at = p.received_at
RETURNING e.id, e.received_at, p.lost
"""


@dataclass(frozen=True)
class PendingReenrich:
    """What events_pending_reenrich did for one tenant's window."""

    pending: int  # events found pending: no events_enriched row, no open dead letter
    lost: int  # of those, marked enriched in the ledger (their events_enriched row had gone)
    reenriched: int  # enriched again now, by events_enrich
    failed: int  # enrichment failed again: left due for the drain (its retries, then the DLQ)
    enqueued: bool  # the drain was woken for the failed ones (else the sweeper, within ~3 min)


def events_pending_reenrich(
    *,
    tenant_id: uuid.UUID | str,
    start: datetime,
    end: datetime,
    batch: int = DRAIN_BATCH,
) -> PendingReenrich:
    """Re-enrich the tenant's events pending in [start, end) now (idempotent).

    Batch by batch, each in one transaction of the tenant's scope: the pending events get their
    ledger marker and retry backoff cleared and go through `events_enrich` (what a replay uses;
    the drain writes rows the same way) while still locked. One that fails again stays due: the
    drain is woken and applies its retries and the dead-letter queue. A window with nothing
    pending changes nothing.
    """
    tid = str(tenant_id)
    params = {
        "tenant": tid,
        "start": start,
        "end": end,
        "after_at": start,
        "after_id": 0,
        "limit": batch,
    }
    pending = lost = reenriched = failed = 0
    while True:
        with tenant_scope(tid):
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # per-event probes, as in reconcile's count
                cursor.execute(_PENDING_BATCH_SQL, params)
                rows = cursor.fetchall()
            if not rows:
                break
            outcome = events_enrich(tenant_id=tid, event_ids=[row[0] for row in rows])
        pending += len(rows)
        lost += sum(1 for row in rows if row[2])
        reenriched += len(outcome.enriched)
        failed += len(outcome.failed)
        params["after_at"], params["after_id"] = max((row[1], row[0]) for row in rows)
        if len(rows) < batch:
            break
    enqueued = wake.publish([tid]) if failed else False
    return PendingReenrich(pending, lost, reenriched, failed, enqueued)
