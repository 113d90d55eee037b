"""Dead letters: park events that failed past their retries, and keep the depth gauge true."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.db import connection
from django.utils import timezone

from ingest import metrics, selectors
from ingest.models import DeadLetter
from tenants.scope import tenant_scope

logger = logging.getLogger(__name__)

# A dead-lettered event is not due again (year 9999: Python can still read it) until a replay
# enriches it.
_PARK_SQL = """
UPDATE ingest_event SET enrich_retry_at = '9999-12-31T00:00:00Z'
WHERE tenant_id = %s::uuid AND id = ANY(%s::bigint[]) AND enriched_at IS NULL
"""

_DLQ_UPSERT_SQL = """
INSERT INTO ingest_deadletter
    (tenant_id, event_id, stage, error_class, error_message, attempts, first_failed_at,
     last_failed_at, resolved_at)
VALUES (%s::uuid, %s, %s, %s, %s, %s, %s, now(), NULL)
ON CONFLICT (tenant_id, event_id, stage) WHERE resolved_at IS NULL DO UPDATE SET
    error_class = EXCLUDED.error_class,
    error_message = EXCLUDED.error_message,
    attempts = ingest_deadletter.attempts + EXCLUDED.attempts,
    last_failed_at = EXCLUDED.last_failed_at
RETURNING (xmax = 0) AS inserted
"""


def error_parts(exc: BaseException) -> tuple[str, str]:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"[:200], str(exc)[:4000]


def deadletter_record(
    *,
    tenant_id: uuid.UUID | str,
    failures: dict[int, BaseException],
    attempts: int,
    first_failed_at: datetime | None,
    stage: str = DeadLetter.Stage.ENRICH,
) -> int:
    """Park failed events in the dead-letter table (one open entry per event and stage).

    Parked events are no longer due for enrichment: only a replay enriches them.
    """
    first = first_failed_at or timezone.now()
    created = 0
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        for event_id, exc in sorted(failures.items()):
            error_class, message = error_parts(exc)
            cursor.execute(
                _DLQ_UPSERT_SQL,
                [str(tenant_id), event_id, stage, error_class, message, attempts, first],
            )
            created += 1 if cursor.fetchone()[0] else 0
        if stage == DeadLetter.Stage.ENRICH:
            cursor.execute(_PARK_SQL, [str(tenant_id), sorted(failures)])
        slug = selectors.tenant_slug(tenant_id)
    metrics.DLQ_EVENTS.labels(tenant=slug, stage=stage).inc(created)
    metrics.ENRICH.labels(outcome="dead_lettered").inc(len(failures))
    logger.warning(
        "events dead-lettered", extra={"stage": stage, "events": len(failures), "new": created}
    )
    deadletter_depth_refresh(tenant_id=tenant_id)
    return created


def deadletter_depth_refresh(*, tenant_id: uuid.UUID | str | None = None) -> None:
    """Recompute the unresolved DLQ depth gauge from PostgreSQL (one tenant, or all)."""
    for slug, depth in selectors.deadletter_depths(tenant_id=tenant_id).items():
        metrics.DLQ_DEPTH.labels(tenant=slug).set(depth)
