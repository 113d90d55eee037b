"""Writes of the ingest app: accept events, drain them into events_enriched, DLQ and replay."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from codex.errors import ApiError
from flags.selectors import effective_flags
from ingest import metrics, selectors
from ingest.enrichment import Source, enriched_values
from ingest.models import DeadLetter
from ingest.validation import Item
from ingest.wake import drain_wake
from ingest.webhooks.shapes import ENRICH_AMOUNT, ENRICH_AMOUNT_MINOR, ENRICH_CURRENCY
from tenants.audit import audit_record
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)

# Accepted, not enriched after this long: the sweeper enqueues it again.
SWEEP_AFTER = timedelta(minutes=2)
SWEEP_LIMIT = 5000

# ---------------------------------------------------------------------------------------------
# accept


@dataclass(frozen=True)
class ItemResult:
    """The answer for one position of a request."""

    idempotency_key: str | None
    status: str  # accepted | duplicate | conflict | rejected
    id: int | None = None
    error: dict[str, str] | None = None
    source: str | None = None


_INSERT_SQL = """
INSERT INTO ingest_event
    (tenant_id, idempotency_key, type, source, occurred_at, received_at, payload, fingerprint,
     key_id)
SELECT %s::uuid, u.k, u.t, u.s, u.o, now(), u.p, u.f, %s
FROM jsonb_to_recordset(%s::jsonb) AS u(k text, t text, s text, o timestamptz, p jsonb, f text)
ORDER BY u.k
ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
RETURNING id, idempotency_key
"""
# The rows travel as one JSON document (jsonb_to_recordset), not as six arrays: one parameter to
# quote instead of one per value, which client-side binding does in Python.
# Rows are inserted in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.

_EXISTING_SQL = """
SELECT id, idempotency_key, fingerprint FROM ingest_event
WHERE tenant_id = %s::uuid
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))
"""
# The whole write as one simple-protocol query string: scope, INSERT, the rows of every key, scope
# back. Outside a transaction PostgreSQL runs such a string as one implicit transaction, so this
# is one round trip and one commit, and the set_config(..., true) scope ends with it (nothing
# leaks into the pooled connection). READ COMMITTED gives the SELECT a fresh snapshot: it sees
# rows that a concurrent request committed while the INSERT waited on them.
_WRITE_SQL = ";\n".join(
    [
        "SELECT set_config('app.prev_tenant', coalesce(current_setting('app.tenant_id', true),"
        " ''), true), set_config('app.prev_system', coalesce(current_setting("
        "'app.system_scope', true), ''), true), set_config('app.tenant_id', %s, true),"
        " set_config('app.system_scope', '', true)",
        _INSERT_SQL.strip(),
        _EXISTING_SQL.strip(),
        "SELECT set_config('app.tenant_id', current_setting('app.prev_tenant'), true),"
        " set_config('app.system_scope', current_setting('app.prev_system'), true)",
    ]
)


def _write(tenant_id: str, key_id: str, events: list) -> tuple[dict, dict]:
    """Run _WRITE_SQL: ({key: id} inserted now, {key: (id, fingerprint)} of every key)."""
    keys = [e.idempotency_key for e in events]
    rows = orjson.dumps(
        [
            {
                "k": e.idempotency_key,
                "t": e.type,
                "s": e.source,
                "o": e.occurred_at.isoformat(),
                "p": orjson.Fragment(e.payload_json),
                "f": e.fingerprint,
            }
            for e in events
        ]
    ).decode()
    params = [tenant_id, tenant_id, key_id, rows, tenant_id, orjson.dumps(keys).decode()]
    # Inside a caller's transaction (tests, scripts) a savepoint keeps a failure from breaking it.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(_WRITE_SQL, params)
        cursor.nextset()
        inserted = {key: event_id for event_id, key in cursor.fetchall()}
        cursor.nextset()
        rows = {key: (event_id, fp) for event_id, key, fp in cursor.fetchall()}
        cursor.nextset()
    return inserted, rows


def events_ingest(*, tenant_id: uuid.UUID, key_id: str, items: list[Item]) -> list[ItemResult]:
    """Store the valid events of a request exactly once per (tenant, idempotency_key).

    One round trip, one transaction: INSERT .. ON CONFLICT DO NOTHING RETURNING for the batch and
    a SELECT of its keys (_WRITE_SQL); after commit the tenant's drain is woken (debounced).
    """
    firsts: dict[str, Any] = {}
    for item in items:
        if item.event is not None:
            firsts.setdefault(item.event.idempotency_key, item.event)
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    if firsts:
        inserted, rows = _write(str(uuid.UUID(str(tenant_id))), key_id, list(firsts.values()))
        existing = {key: row for key, row in rows.items() if key not in inserted}
        if len(rows) != len(firsts):
            # Only possible if a conflicting row vanished between the two statements.
            raise ApiError(
                "unavailable",
                "Concurrent change; retry.",
                status_code=503,
                headers={"Retry-After": "1"},
            )
        if inserted:
            # After commit, off the request thread, debounced: nothing depends on it (the ledger
            # is the work list; the sweeper wakes drains for anything a lost wake-up left).
            transaction.on_commit(partial(drain_wake, tenant_id))
    fingerprints = {key: firsts[key].fingerprint for key in inserted}
    fingerprints.update({key: fp for key, (_, fp) in existing.items()})
    ids = dict(inserted)
    ids.update({key: event_id for key, (event_id, _) in existing.items()})

    results: list[ItemResult] = []
    answered_new: set[str] = set()
    for item in items:
        event = item.event
        if event is None:
            results.append(
                ItemResult(
                    item.idempotency_key,
                    "rejected",
                    error={"code": "invalid_event", "message": item.error or "invalid"},
                )
            )
            continue
        key = event.idempotency_key
        if key in inserted and key not in answered_new:
            answered_new.add(key)
            results.append(ItemResult(key, "accepted", ids[key], source=event.source))
        elif event.fingerprint == fingerprints[key]:
            results.append(ItemResult(key, "duplicate", ids[key], source=event.source))
        else:
            results.append(
                ItemResult(
                    key,
                    "conflict",
                    None,
                    error={
                        "code": "idempotency_key_reused",
                        "message": "This idempotency_key was used for different content.",
                    },
                    source=event.source,
                )
            )
    return results


# ---------------------------------------------------------------------------------------------
# enrich: workers drain the ledger (design.md: enrichment is driven by the ledger, not messages)

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
ON CONFLICT (tenant_id, event_id) DO NOTHING
"""
_MARK_ENRICHED_SQL = """
UPDATE ingest_event SET enriched_at = %s, enrich_retry_at = NULL
WHERE tenant_id = %s::uuid AND id = ANY(%s::bigint[])
"""
_MARK_FAILED_SQL = """
UPDATE ingest_event e SET
    enrich_attempts = u.attempts,
    enrich_failed_at = coalesce(e.enrich_failed_at, %s),
    enrich_retry_at = u.retry_at
FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS u(id, attempts, retry_at)
WHERE e.tenant_id = %s::uuid AND e.id = u.id
"""
# A dead-lettered event is not due again (year 9999: Python can still read it) until a replay
# enriches it.
_PARK_SQL = """
UPDATE ingest_event SET enrich_retry_at = '9999-12-31T00:00:00Z'
WHERE tenant_id = %s::uuid AND id = ANY(%s::bigint[]) AND enriched_at IS NULL
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
        outcome.enriched = [v[0] for v in values]
        cursor.execute(_MARK_ENRICHED_SQL, [now, tenant_id, outcome.enriched])
    return outcome


def _schedule_failures(
    cursor, tenant_id: str, rows: list, outcome: EnrichOutcome, now: datetime
) -> None:
    """Per failed event: count the attempt, then a backoff retry or (past retryCap) the DLQ."""
    retry_cap = int(effective_flags(tenant_id=tenant_id)["retryCap"])
    state = {row[0]: (row[10], row[11]) for row in rows}
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
    cursor.execute(_MARK_FAILED_SQL, [now, ids, attempts, retry_at, tenant_id])
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


# ---------------------------------------------------------------------------------------------
# dead letters

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


def _error_parts(exc: BaseException) -> tuple[str, str]:
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
            error_class, message = _error_parts(exc)
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


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one dead-letter entry did."""

    entry_id: int
    tenant_id: uuid.UUID
    event_id: int
    outcome: str  # resolved | failed
    error: str = ""


def deadletter_replay(*, entry_ids: Iterable[int], actor: str, user=None) -> list[ReplayResult]:
    """Re-run enrichment for open dead-letter entries; resolve on success; audit each replay."""
    with system_scope("dlq-replay"):
        entries = list(
            DeadLetter.objects.filter(id__in=list(entry_ids), resolved_at__isnull=True)
            .order_by("id")
            .values("id", "tenant_id", "event_id", "stage", "attempts")
        )
    results: list[ReplayResult] = []
    for entry in entries:
        tenant_id, event_id = entry["tenant_id"], entry["event_id"]
        outcome = events_enrich(tenant_id=tenant_id, event_ids=[event_id])
        exc = outcome.failed.get(event_id)
        if exc is None:
            result = ReplayResult(entry["id"], tenant_id, event_id, "resolved")
        else:
            error_class, message = _error_parts(exc)
            with tenant_scope(tenant_id):
                DeadLetter.objects.filter(tenant_id=tenant_id, id=entry["id"]).update(
                    attempts=entry["attempts"] + 1,
                    last_failed_at=timezone.now(),
                    error_class=error_class,
                    error_message=message,
                )
            result = ReplayResult(entry["id"], tenant_id, event_id, "failed", f"{error_class}")
        with tenant_scope(tenant_id):
            after = DeadLetter.objects.filter(tenant_id=tenant_id, id=entry["id"]).values(
                "attempts", "resolved_at"
            )[0]
        audit_record(
            actor=actor,
            user=user,
            action="dlq.replay",
            tenant_id=tenant_id,
            target=f"deadletter:{entry['id']} event:{event_id}",
            old={"resolved_at": None, "attempts": entry["attempts"]},
            new={
                "outcome": result.outcome,
                "attempts": after["attempts"],
                "resolved_at": after["resolved_at"].isoformat() if after["resolved_at"] else None,
                "error": result.error or None,
            },
        )
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------
# sweeper


def events_sweep_unenriched(
    *, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_LIMIT
) -> dict[str, int]:
    """Tenants with events accepted more than `older_than` ago, due and still not enriched.

    Returns {tenant_id: number of such events (at most `limit` counted in all)}; the caller wakes
    their drains. Events waiting for a retry or dead-lettered are not due, so a retry in flight is
    never started twice. Cross-tenant, so it runs in a named system scope.
    """
    cutoff = timezone.now() - older_than
    with system_scope("sweeper"), connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL, [cutoff, limit])
        return {str(tenant_id): count for tenant_id, count in cursor.fetchall()}


_SWEEP_SQL = """
SELECT tenant_id, count(*) FROM (
    SELECT tenant_id FROM ingest_event
    WHERE enriched_at IS NULL AND received_at < %s
      AND (enrich_retry_at IS NULL OR enrich_retry_at <= now())
    LIMIT %s
) due GROUP BY tenant_id
"""
