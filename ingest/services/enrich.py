"""Enrichment: drain the ledger into events_enriched, set-based; failures retry, then the DLQ.

design.md: enrichment is driven by the ledger, not by messages. The pure per-event computation
is ingest.enrichment; this module claims rows, writes them and schedules the failures.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from flags.selectors import effective_flags
from ingest import metrics
from ingest.enrichment import (
    ENRICH_AMOUNT,
    ENRICH_AMOUNT_MINOR,
    ENRICH_CURRENCY,
    Source,
    enriched_values,
)
from ingest.models import DeadLetter
from ingest.services.deadletters import deadletter_depth_refresh, deadletter_record
from tenants.scope import tenant_scope

logger = logging.getLogger(__name__)

DRAIN_BATCH = 500
# After failure n an event waits base * 2**(n-1) s (settings.CODEX_ENRICH_RETRY_BASE_S).
DEFAULT_RETRY_BASE_S = 2.0

# The amount fields of /v1/events payloads, or where a webhook source's envelope holds them.
_CLAIM_COLUMNS = f"""
    id, type, source, occurred_at, received_at,
    jsonb_typeof({ENRICH_AMOUNT}), ({ENRICH_AMOUNT})#>>'{{}}',
    jsonb_typeof({ENRICH_AMOUNT_MINOR}), ({ENRICH_AMOUNT_MINOR})#>>'{{}}',
    {ENRICH_CURRENCY}, enrich_attempts, enrich_failed_at
"""
# Due, unenriched events of one tenant, oldest first. SKIP LOCKED: concurrent drains (several
# worker processes, a replay) take disjoint rows, so no event is enriched twice or waited for.
_CLAIM_SQL = f"""
SELECT {_CLAIM_COLUMNS} FROM ingest_event
WHERE tenant_id = %s::uuid AND enriched_at IS NULL
  AND (enrich_retry_at IS NULL OR enrich_retry_at <= now())
ORDER BY received_at
LIMIT %s
FOR NO KEY UPDATE SKIP LOCKED
"""
_CLAIM_IDS_SQL = f"""
SELECT {_CLAIM_COLUMNS} FROM ingest_event
WHERE tenant_id = %s::uuid AND id = ANY(%s::bigint[]) AND enriched_at IS NULL
ORDER BY id
FOR NO KEY UPDATE
"""
_ENRICHED_INSERT_SQL = """
INSERT INTO events_enriched
    (tenant_id, event_id, type, source, occurred_at, occurred_date, received_at, amount_minor,
     currency, lag_ms, enriched_at)
SELECT %s::uuid, u.*, %s::timestamptz
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::date[],
            %s::timestamptz[], %s::bigint[], %s::text[], %s::bigint[]) AS u
ON CONFLICT (tenant_id, event_id, received_at) DO NOTHING
"""
_MARK_ENRICHED_SQL = """
UPDATE ingest_event SET enriched_at = %s, enrich_retry_at = NULL
WHERE tenant_id = %s::uuid AND id = ANY(%s::bigint[])
  AND received_at BETWEEN %s AND %s
"""
# The claimed rows' received_at range prunes the UPDATE to their month(s): by id alone it probes
# every partition's primary key for every id (5 partitions, 500 ids: 7.7 ms against 5.2 ms), and
# a month's fresh partition without statistics yet could even be scanned whole.
_MARK_FAILED_SQL = """
UPDATE ingest_event e SET
    enrich_attempts = u.attempts,
    enrich_failed_at = coalesce(e.enrich_failed_at, %s),
    enrich_retry_at = u.retry_at
FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS u(id, attempts, retry_at)
WHERE e.tenant_id = %s::uuid AND e.id = u.id AND e.received_at BETWEEN %s AND %s
"""


def retry_delay(attempt: int) -> float:
    """Seconds an event waits after its failure number `attempt` (1, 2, 3, ...): base * 2**(n-1)."""
    base = float(getattr(settings, "CODEX_ENRICH_RETRY_BASE_S", DEFAULT_RETRY_BASE_S))
    return base * 2 ** (attempt - 1)


@dataclass
class EnrichOutcome:
    """What one enrichment pass did."""

    claimed: int = 0
    enriched: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already enriched, or not this tenant's
    failed: dict[int, BaseException] = field(default_factory=dict)
    dead_lettered: list[int] = field(default_factory=list)
    retry_in: float | None = None  # seconds until the earliest retry this pass scheduled


def _write_enriched(cursor, tenant_id: str, rows: list, now: datetime) -> EnrichOutcome:
    """Enrich claimed ledger rows set-based; return the outcome (failures not yet handled)."""
    outcome = EnrichOutcome(claimed=len(rows))
    values = []
    for row in rows:
        src = Source(*row[:10])
        try:
            values.append(enriched_values(src))
        except Exception as exc:  # noqa: BLE001 - one bad event must not block its batch
            outcome.failed[src.id] = exc
    if values:
        columns = [list(column) for column in zip(*values, strict=True)]
        cursor.execute(_ENRICHED_INSERT_SQL, [tenant_id, now, *columns])
        ids, received = columns[0], columns[5]  # enriched_values(): id first, received_at 6th
        outcome.enriched = ids
        cursor.execute(_MARK_ENRICHED_SQL, [now, tenant_id, ids, min(received), max(received)])
    return outcome


def _schedule_failures(
    cursor, tenant_id: str, rows: list, outcome: EnrichOutcome, now: datetime
) -> None:
    """Per failed event: count the attempt, then a backoff retry or (past retryCap) the DLQ."""
    retry_cap = int(effective_flags(tenant_id=tenant_id)["retryCap"])
    state = {row[0]: (row[10], row[11]) for row in rows}
    received = [row[4] for row in rows if row[0] in outcome.failed]
    ids, attempts, retry_at = [], [], []
    for event_id in sorted(outcome.failed):
        attempt = state[event_id][0] + 1
        ids.append(event_id)
        attempts.append(attempt)
        if attempt > retry_cap:
            retry_at.append(None)  # deadletter_record parks it below
            outcome.dead_lettered.append(event_id)
        else:
            delay = retry_delay(attempt)
            retry_at.append(now + timedelta(seconds=delay))
            outcome.retry_in = delay if outcome.retry_in is None else min(outcome.retry_in, delay)
    cursor.execute(
        _MARK_FAILED_SQL,
        [now, ids, attempts, retry_at, tenant_id, min(received), max(received)],
    )
    retried = len(ids) - len(outcome.dead_lettered)
    if retried:
        metrics.ENRICH.labels(outcome="retried").inc(retried)
        logger.info(
            "enrichment failed; retrying",
            extra={"events": retried, "retry_cap": retry_cap, "retry_in_s": outcome.retry_in},
        )
    for event_id in outcome.dead_lettered:
        first = state[event_id][1] or now
        deadletter_record(
            tenant_id=tenant_id,
            failures={event_id: outcome.failed[event_id]},
            attempts=attempts[ids.index(event_id)],
            first_failed_at=first,
        )


def events_drain(*, tenant_id: uuid.UUID | str, limit: int = DRAIN_BATCH) -> EnrichOutcome:
    """Claim up to `limit` due, unenriched events of a tenant and enrich them, in one transaction.

    Enriched rows are written with one INSERT .. SELECT FROM unnest; events that fail are retried
    with backoff up to the tenant's retryCap and then dead-lettered, each on its own.
    """
    tid = str(tenant_id)
    now = timezone.now()
    with tenant_scope(tid), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [tid, limit])
        rows = cursor.fetchall()
        if not rows:
            return EnrichOutcome()
        outcome = _write_enriched(cursor, tid, rows, now)
        if outcome.failed:
            _schedule_failures(cursor, tid, rows, outcome, now)
    metrics.ENRICH.labels(outcome="enriched").inc(len(outcome.enriched))
    return outcome


def events_enrich(*, tenant_id: uuid.UUID | str, event_ids: Iterable[int]) -> EnrichOutcome:
    """Enrich the named events now (replay, tests); idempotent (a second run changes nothing).

    Waits for a drain holding them. A failing event does not stop the others: its exception is
    returned and nothing else changes for it. Open dead-letter entries of the events enriched now
    are resolved.
    """
    tid = str(tenant_id)
    wanted = sorted({int(i) for i in event_ids})
    now = timezone.now()
    with tenant_scope(tid), connection.cursor() as cursor:
        cursor.execute(_CLAIM_IDS_SQL, [tid, wanted])
        rows = cursor.fetchall()
        outcome = _write_enriched(cursor, tid, rows, now)
        seen = {row[0] for row in rows}
        outcome.skipped = [i for i in wanted if i not in seen]
        ok = [i for i in wanted if i not in outcome.failed]
        resolved = DeadLetter.objects.filter(
            tenant_id=tid, event_id__in=ok, resolved_at__isnull=True
        ).update(resolved_at=now)
    metrics.ENRICH.labels(outcome="enriched").inc(len(outcome.enriched))
    metrics.ENRICH.labels(outcome="skipped").inc(len(outcome.skipped))
    if resolved:
        deadletter_depth_refresh(tenant_id=tid)
    return outcome
