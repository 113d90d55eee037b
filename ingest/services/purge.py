"""Batched deletes of a tenant's rows: what retention, erasure and offboarding are built from.

Every deletion goes in batches, each its own short transaction in the tenant's scope (RLS backs
the tenant filter), so none holds locks for long and a crash loses at most one batch's progress:
each caller can simply run again. docs/lifecycle.md has the rules.
"""

from __future__ import annotations

from django.db import connection

from ingest import metrics
from tenants import deletions
from tenants.scope import tenant_scope

BATCH = deletions.BATCH

# One batch of a tenant's ledger rows and everything hanging off them, in one statement: the
# events matching the filter (oldest first), their enriched rows and dead letters. `{where}` is
# a fixed fragment chosen by the caller, never client text.
_EVENTS_DELETE_SQL = """
WITH gone AS (
    DELETE FROM ingest_event e
    WHERE (e.tenant_id, e.id, e.received_at) IN (
        SELECT tenant_id, id, received_at FROM ingest_event
        WHERE tenant_id = %(tenant)s::uuid {where}
        ORDER BY received_at
        LIMIT %(limit)s
    )
    RETURNING e.id, e.received_at, e.idempotency_key
), enriched AS (
    DELETE FROM events_enriched ee USING gone
    WHERE ee.tenant_id = %(tenant)s::uuid AND ee.event_id = gone.id
      AND ee.received_at = gone.received_at
    RETURNING 1
), letters AS (
    DELETE FROM ingest_deadletter d USING gone
    WHERE d.tenant_id = %(tenant)s::uuid AND d.event_id = gone.id
    RETURNING 1
){extra}
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM enriched),
       (SELECT count(*) FROM letters)
"""
# Erasure keeps each key, marked, without the event: a resent erased event stays a duplicate
# instead of being stored again, and the event lookup answers "erased".
_MARK_ERASED = """, marked AS (
    UPDATE ingest_idempotency i SET erased_at = now() FROM gone
    WHERE i.tenant_id = %(tenant)s::uuid AND i.idempotency_key = gone.idempotency_key
    RETURNING 1
)"""

PARTITIONED = frozenset({"ingest_event", "events_enriched"})
# The columns naming one row of a partitioned table (a ctid is only unique per partition).
PARTITION_KEY = ("tenant_id", "id", "received_at")


def events_delete(
    *,
    tenant_id: str,
    where: str,
    params: dict,
    erase: bool,
    limit: int = BATCH,
    on_batch=None,
) -> tuple[int, int, int]:
    """Delete matching events with their enriched rows and dead letters, batch after batch.

    Returns (events, enriched rows, dead letters) deleted; `erase` marks the keys erased.
    `on_batch(events, enriched, letters)` is called after each batch.
    """
    events = enriched = letters = 0
    sql = _EVENTS_DELETE_SQL.format(where=where, extra=_MARK_ERASED if erase else "")
    while True:
        with tenant_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(sql, {**params, "tenant": tenant_id, "limit": limit})
            batch = cursor.fetchone()
        events, enriched, letters = events + batch[0], enriched + batch[1], letters + batch[2]
        if on_batch is not None:
            on_batch(*batch)
        if batch[0] < limit:
            return events, enriched, letters


def rows_delete(
    table: str,
    *,
    tenant_id: str,
    where: str = "",
    params: dict | None = None,
    limit: int = BATCH,
    on_batch=None,
) -> int:
    """Delete a tenant's rows of one ingest table matching `where`, batch after batch; how many."""
    return deletions.rows_delete(
        table,
        tenant_id=tenant_id,
        where=where,
        params=params,
        key=PARTITION_KEY if table in PARTITIONED else (),
        limit=limit,
        on_batch=on_batch,
    )


def rows_count(table: str, *, tenant_id: str, where: str, params: dict) -> int:
    """How many of a tenant's rows of one table match `where` (a dry run's figure)."""
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %(tenant)s::uuid {where}",
            {**params, "tenant": tenant_id},
        )
        return cursor.fetchone()[0]


def deleted_count(reason: str, counts: dict[str, int]) -> None:
    """Count deleted rows per table in codex_ingest_lifecycle_deleted_rows_total."""
    for table, n in counts.items():
        metrics.LIFECYCLE_DELETED.labels(reason=reason, table=table).inc(n)
