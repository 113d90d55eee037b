"""Writes of the ingest app: accept events, enrich them, dead-letter and replay failures."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from codex.errors import ApiError
from ingest import metrics, selectors
from ingest.models import DeadLetter, EnrichedEvent, Event
from ingest.validation import Item
from tenants.audit import audit_record
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)

# Accepted, not enriched after this long: the sweeper enqueues it again.
SWEEP_AFTER = timedelta(minutes=2)
SWEEP_LIMIT = 5000
ENQUEUE_CHUNK = 500

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
SELECT %s::uuid, u.k, u.t, u.s, u.o, now(), u.p::jsonb, u.f, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
    AS u(k, t, s, o, p, f)
ORDER BY u.k
ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
RETURNING id, idempotency_key
"""
# Rows are inserted in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.

_EXISTING_SQL = """
SELECT id, idempotency_key, fingerprint FROM ingest_event
WHERE tenant_id = %s::uuid AND idempotency_key = ANY(%s::text[])
"""


def events_ingest(*, tenant_id: uuid.UUID, key_id: str, items: list[Item]) -> list[ItemResult]:
    """Store the valid events of a request exactly once per (tenant, idempotency_key).

    One INSERT .. ON CONFLICT DO NOTHING RETURNING for the batch, then one SELECT for the keys
    that already existed; the enrichment of the new events is enqueued after commit, as one task.
    """
    firsts: dict[str, Any] = {}
    for item in items:
        if item.event is not None:
            firsts.setdefault(item.event.idempotency_key, item.event)
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    if firsts:
        events = list(firsts.values())
        with tenant_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                [
                    str(tenant_id),
                    key_id,
                    [e.idempotency_key for e in events],
                    [e.type for e in events],
                    [e.source for e in events],
                    [e.occurred_at for e in events],
                    [e.payload_json for e in events],
                    [e.fingerprint for e in events],
                ],
            )
            inserted = {key: event_id for event_id, key in cursor.fetchall()}
            others = [key for key in firsts if key not in inserted]
            if others:
                cursor.execute(_EXISTING_SQL, [str(tenant_id), others])
                existing = {key: (event_id, fp) for event_id, key, fp in cursor.fetchall()}
                if len(existing) != len(others):
                    # Only possible if a conflicting row vanished between the two statements.
                    raise ApiError(
                        "unavailable",
                        "Concurrent change; retry.",
                        status_code=503,
                        headers={"Retry-After": "1"},
                    )
            if inserted:
                new_ids = list(inserted.values())
                transaction.on_commit(
                    partial(enqueue_enrichment, tenant_id=tenant_id, event_ids=new_ids)
                )
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


def enqueue_enrichment(*, tenant_id: uuid.UUID | str, event_ids: list[int]) -> bool:
    """Enqueue one enrichment task; on a broker failure log, count and leave it to the sweeper."""
    from ingest.tasks import enrich_events

    try:
        enrich_events.apply_async(
            args=(str(tenant_id), event_ids),
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        )
    # kombu and redis raise many exception types; whatever it is, the ledger has the event.
    except Exception as exc:
        metrics.ENQUEUE_ERRORS.inc()
        logger.warning(
            "enrichment enqueue failed; the sweeper will retry",
            extra={"events": len(event_ids)},
            exc_info=exc,
        )
        return False
    return True


# ---------------------------------------------------------------------------------------------
# enrich

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"], 0),
    **dict.fromkeys(["RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}
_MAX_MINOR = 2**63 - 1


class EnrichmentFault(RuntimeError):
    """A failure injected with settings.CODEX_ENRICH_FAIL_TYPES (drills and tests)."""


def _currency(payload: dict) -> str:
    value = payload.get("currency")
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return ""


def _amount_minor(payload: dict, currency: str) -> int | None:
    """Minor units from `amount_minor` (integer) or `amount` (decimal in major units)."""
    minor = payload.get("amount_minor")
    if isinstance(minor, int) and not isinstance(minor, bool):
        return minor if abs(minor) <= _MAX_MINOR else None
    amount = payload.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        return None
    try:
        value = Decimal(str(amount)).scaleb(_EXPONENTS.get(currency, 2))
        value = value.to_integral_value()
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or abs(value) > _MAX_MINOR:
        return None
    return int(value)


def enrich_row(event: Event) -> EnrichedEvent:
    """The events_enriched row of one event (pure; raises on an unusable event)."""
    fail_types = getattr(settings, "CODEX_ENRICH_FAIL_TYPES", ())
    if event.type in fail_types:
        raise EnrichmentFault(f"enrichment fault injected for type {event.type!r}")
    payload = event.payload if isinstance(event.payload, dict) else {}
    currency = _currency(payload)
    occurred = event.occurred_at.astimezone(UTC)
    lag = event.received_at - event.occurred_at
    return EnrichedEvent(
        tenant_id=event.tenant_id,
        event_id=event.id,
        type=event.type,
        source=event.source,
        occurred_at=event.occurred_at,
        occurred_date=occurred.date(),
        received_at=event.received_at,
        amount_minor=_amount_minor(payload, currency),
        currency=currency,
        lag_ms=int(lag.total_seconds() * 1000),
    )


@dataclass
class EnrichOutcome:
    """What one enrichment pass did."""

    enriched: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # already enriched, or not this tenant's
    failed: dict[int, BaseException] = field(default_factory=dict)


def events_enrich(*, tenant_id: uuid.UUID | str, event_ids: Iterable[int]) -> EnrichOutcome:
    """Enrich events into events_enriched; idempotent (a second run changes nothing).

    A failing event does not stop the others; its exception is returned for retry/DLQ. Open
    dead-letter entries of events that are now enriched are resolved.
    """
    wanted = sorted({int(i) for i in event_ids})
    outcome = EnrichOutcome()
    now = timezone.now()
    with tenant_scope(tenant_id):
        events = list(
            Event.objects.filter(tenant_id=tenant_id, id__in=wanted, enriched_at__isnull=True)
        )
        rows: list[EnrichedEvent] = []
        for event in events:
            try:
                rows.append(enrich_row(event))
            except Exception as exc:  # noqa: BLE001 - one bad event must not block the batch
                outcome.failed[event.id] = exc
        if rows:
            EnrichedEvent.objects.bulk_create(rows, ignore_conflicts=True)
            done = [row.event_id for row in rows]
            Event.objects.filter(tenant_id=tenant_id, id__in=done).update(enriched_at=now)
            outcome.enriched = done
        seen = {event.id for event in events}
        outcome.skipped = [i for i in wanted if i not in seen]
        ok = [i for i in wanted if i not in outcome.failed]
        resolved = DeadLetter.objects.filter(
            tenant_id=tenant_id, event_id__in=ok, resolved_at__isnull=True
        ).update(resolved_at=now)
    metrics.ENRICH.labels(outcome="enriched").inc(len(outcome.enriched))
    metrics.ENRICH.labels(outcome="skipped").inc(len(outcome.skipped))
    if resolved:
        deadletter_depth_refresh(tenant_id=tenant_id)
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
    """Park failed events in the dead-letter table (one open entry per event and stage)."""
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
) -> dict[str, list[int]]:
    """Events accepted more than `older_than` ago and still not enriched (nor dead-lettered).

    Returns {tenant_id: [event ids]}; the caller enqueues them. Cross-tenant, so it runs in a
    named system scope.
    """
    cutoff = timezone.now() - older_than
    open_dlq = DeadLetter.objects.filter(
        tenant_id=OuterRef("tenant_id"), event_id=OuterRef("id"), resolved_at__isnull=True
    )
    with system_scope("sweeper"):
        rows = list(
            Event.objects.filter(enriched_at__isnull=True, received_at__lt=cutoff)
            .exclude(Exists(open_dlq))
            .order_by("received_at")
            .values_list("tenant_id", "id")[:limit]
        )
    found: dict[str, list[int]] = {}
    for tenant_id, event_id in rows:
        found.setdefault(str(tenant_id), []).append(event_id)
    return found
