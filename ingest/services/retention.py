"""Retention: events, enriched rows and resolved dead letters older than retentionDays go."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from codex.db import roles
from flags.selectors import effective_flags
from ingest import metrics, partitions
from ingest.services.purge import BATCH, deleted_count, events_delete, rows_count, rows_delete
from tenants.audit import audit_record
from tenants.scope import system_scope
from tenants.selectors import tenant_find, tenants_list

logger = logging.getLogger(__name__)

# Keys are remembered this many days longer than their events (retention), so a late retry of an
# expired event is still a duplicate; after that, the same key is a new event.
DEFAULT_IDEMPOTENCY_GRACE_DAYS = 30

_OLD_EVENTS = "AND received_at < %(cutoff)s"
_RESOLVED_LETTERS = "AND resolved_at IS NOT NULL AND resolved_at < %(cutoff)s"
_OLD_KEYS = "AND received_at < %(key_cutoff)s"


def idempotency_grace() -> timedelta:
    """How much longer than its event an idempotency key is remembered."""
    days = getattr(settings, "CODEX_IDEMPOTENCY_GRACE_DAYS", DEFAULT_IDEMPOTENCY_GRACE_DAYS)
    return timedelta(days=int(days))


@dataclass
class TenantRetention:
    """What retention removed (or, dry run, would remove) for one tenant."""

    slug: str
    retention_days: int
    cutoff: datetime
    events: int = 0
    enriched: int = 0
    dead_letters: int = 0
    idempotency_keys: int = 0

    def as_dict(self) -> dict:
        return {
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat(),
            "events": self.events,
            "enriched": self.enriched,
            "dead_letters": self.dead_letters,
            "idempotency_keys": self.idempotency_keys,
        }

    def removed_any(self) -> bool:
        return bool(self.events or self.enriched or self.dead_letters or self.idempotency_keys)


@dataclass
class RetentionReport:
    """One retention pass: per tenant, and the month partitions dropped whole."""

    dry_run: bool
    tenants: list[TenantRetention] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)


def _tenants(slug: str | None) -> list[tuple[str, str]]:
    """(id, slug) of every tenant, or of the one called `slug` (none when there is no such)."""
    if slug is not None:
        tenant = tenant_find(slug=slug)
        return [] if tenant is None else [(str(tenant.id), tenant.slug)]
    return [(str(tid), s) for tid, s in tenants_list(reason="lifecycle")]


def _droppable_months(*, now: datetime, keep_after: datetime) -> list[date]:
    """Month partitions whose every row is older than every tenant's retention cutoff."""
    months = []
    for _, month in partitions.month_partitions(table="ingest_event"):
        end = datetime.combine(partitions.add_months(month, 1), datetime.min.time(), tzinfo=UTC)
        if end <= keep_after and end <= now:
            months.append(month)
    return months


def _drop_month(month: date) -> list[str]:
    """Drop one month of events_enriched and the ledger, after the dead letters pointing there."""
    start = datetime.combine(month, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(partitions.add_months(month, 1), datetime.min.time(), tzinfo=UTC)
    name = partitions.partition_name("ingest_event", month)
    with system_scope("retention"), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM ingest_deadletter d USING {name} e "
            "WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id "
            "AND e.received_at >= %s AND e.received_at < %s",
            [start, end],
        )
    dropped = []
    # DDL needs the owner (its own login behind PgBouncer); inside a caller's transaction (tests)
    # partitions drops the SET ROLE instead.
    with roles.owner_mode():
        for table in ("events_enriched", "ingest_event"):
            if partitions.partition_drop(table=table, month=month):
                dropped.append(partitions.partition_name(table, month))
    return dropped


def _months_drop(*, cutoffs: dict, now: datetime, dry_run: bool, actor: str) -> list[str]:
    """Drop (dry run: name) the month partitions that no tenant's retention still needs."""
    # Tenants created later start with the global value: it bounds the drop too.
    global_days = int(effective_flags(tenant_id=None)["retentionDays"])
    keep_after = min([c for _, _, c in cutoffs.values()] + [now - timedelta(days=global_days)])
    dropped: list[str] = []
    for month in _droppable_months(now=now, keep_after=keep_after):
        if dry_run:
            dropped += [
                partitions.partition_name(t, month) for t in ("events_enriched", "ingest_event")
            ]
        else:
            dropped += _drop_month(month)
    if dropped and not dry_run:
        metrics.LIFECYCLE_PARTITIONS_DROPPED.inc(len(dropped))
        audit_record(
            actor=actor,
            action="retention.partitions_drop",
            tenant_id=None,
            target=",".join(dropped),
            new={"partitions": dropped, "before": keep_after.isoformat()},
        )
    return dropped


def _tenant_retain(result: TenantRetention, *, tid: str, dry_run: bool, limit: int) -> None:
    """Count (dry run) or delete one tenant's expired rows into `result`."""
    params = {"cutoff": result.cutoff, "key_cutoff": result.cutoff - idempotency_grace()}
    if dry_run:
        result.events = rows_count("ingest_event", tenant_id=tid, where=_OLD_EVENTS, params=params)
        result.enriched = rows_count(
            "events_enriched", tenant_id=tid, where=_OLD_EVENTS, params=params
        )
        result.dead_letters = rows_count(
            "ingest_deadletter", tenant_id=tid, where=_RESOLVED_LETTERS, params=params
        )
        result.idempotency_keys = rows_count(
            "ingest_idempotency", tenant_id=tid, where=_OLD_KEYS, params=params
        )
        return
    result.events, result.enriched, result.dead_letters = events_delete(
        tenant_id=tid, where=_OLD_EVENTS, params=params, erase=False, limit=limit
    )
    result.dead_letters += rows_delete(
        "ingest_deadletter", tenant_id=tid, where=_RESOLVED_LETTERS, params=params, limit=limit
    )
    result.idempotency_keys = rows_delete(
        "ingest_idempotency", tenant_id=tid, where=_OLD_KEYS, params=params, limit=limit
    )


def retention_enforce(
    *,
    tenant_slug: str | None = None,
    dry_run: bool = False,
    actor: str = "system",
    now: datetime | None = None,
    limit: int = BATCH,
) -> RetentionReport:
    """Remove events, enriched rows, resolved dead letters older than each tenant's retentionDays.

    Whole month partitions go first when no tenant needs any of their rows (only in a pass over
    every tenant); the rest is deleted in batches per tenant. Idempotency keys go
    idempotency_grace() after their events. Each tenant with something removed gets an audit row
    (counts and cutoff only); dry_run counts and changes nothing.
    """
    now = now or timezone.now()
    report = RetentionReport(dry_run=dry_run)
    targets = _tenants(tenant_slug)
    cutoffs = {}
    for tid, slug in targets:
        days = int(effective_flags(tenant_id=tid)["retentionDays"])
        cutoffs[tid] = (slug, days, now - timedelta(days=days))
    if tenant_slug is None and targets:
        report.partitions_dropped = _months_drop(
            cutoffs=cutoffs, now=now, dry_run=dry_run, actor=actor
        )
    for tid, (slug, days, cutoff) in cutoffs.items():
        result = TenantRetention(slug=slug, retention_days=days, cutoff=cutoff)
        _tenant_retain(result, tid=tid, dry_run=dry_run, limit=limit)
        if not dry_run:
            deleted_count(
                "retention",
                {
                    "ingest_event": result.events,
                    "events_enriched": result.enriched,
                    "ingest_deadletter": result.dead_letters,
                    "ingest_idempotency": result.idempotency_keys,
                },
            )
            if result.removed_any():
                audit_record(
                    actor=actor,
                    action="retention.enforce",
                    tenant_id=tid,
                    target=slug,
                    new=result.as_dict(),
                )
        report.tenants.append(result)
    if not dry_run:
        metrics.LIFECYCLE_LAST_RETENTION.set(now.timestamp())
    logger.info(
        "retention pass",
        extra={
            "dry_run": dry_run,
            "tenants": len(report.tenants),
            "events": sum(t.events for t in report.tenants),
            "partitions_dropped": len(report.partitions_dropped),
        },
    )
    return report
