"""Events leave the platform: retention, erasure of a subject, and the offboarding of a tenant.

Every deletion goes in batches, each its own short transaction in the tenant's scope (RLS backs
the tenant filter), so none holds locks for long and a crash loses at most one batch's progress:
each function can simply run again. docs/lifecycle.md has the rules.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.utils import timezone

from codex.db import roles
from flags.selectors import effective_flags
from ingest import metrics, partitions
from tenants.audit import audit_record
from tenants.models import AuditLog, SigningKey, Tenant
from tenants.scope import system_scope, tenant_scope
from tenants.selectors import sources_of_tenant
from tenants.services.keys import signing_key_revoke
from tenants.services.sources import source_set_enabled
from tenants.services.tenants import tenant_suspend

logger = logging.getLogger(__name__)

BATCH = 5000
# Keys are remembered this many days longer than their events (retention), so a late retry of an
# expired event is still a duplicate; after that, the same key is a new event.
DEFAULT_IDEMPOTENCY_GRACE_DAYS = 30


def idempotency_grace() -> timedelta:
    """How much longer than its event an idempotency key is remembered."""
    days = getattr(settings, "CODEX_IDEMPOTENCY_GRACE_DAYS", DEFAULT_IDEMPOTENCY_GRACE_DAYS)
    return timedelta(days=int(days))


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


def _ctid_delete(table: str, where: str, params: dict, *, limit: int) -> int:
    """Delete up to `limit` rows of a plain (unpartitioned) table; the number deleted."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {where} LIMIT %(limit)s))",
            {**params, "limit": limit},
        )
        return cursor.rowcount


def _events_delete_batches(
    *, tenant_id: str, where: str, params: dict, erase: bool, limit: int
) -> tuple[int, int, int]:
    """Delete matching events with their enriched rows and dead letters, batch after batch."""
    events = enriched = letters = 0
    sql = _EVENTS_DELETE_SQL.format(where=where, extra=_MARK_ERASED if erase else "")
    while True:
        with tenant_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(sql, {**params, "tenant": tenant_id, "limit": limit})
            batch = cursor.fetchone()
        events, enriched, letters = events + batch[0], enriched + batch[1], letters + batch[2]
        if batch[0] < limit:
            return events, enriched, letters


def _count_rows(table: str, where: str, params: dict, tenant_id: str) -> int:
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %(tenant)s::uuid {where}",
            {**params, "tenant": tenant_id},
        )
        return cursor.fetchone()[0]


# ---------------------------------------------------------------------------------------------
# retention


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


@dataclass
class RetentionReport:
    """One retention pass: per tenant, and the month partitions dropped whole."""

    dry_run: bool
    tenants: list[TenantRetention] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)


def _tenants(slug: str | None) -> list[tuple[str, str]]:
    with system_scope("lifecycle"):
        rows = Tenant.objects.order_by("slug")
        if slug is not None:
            rows = rows.filter(slug=slug)
        return [(str(tid), s) for tid, s in rows.values_list("id", "slug")]


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
        # Tenants created later start with the global value: it bounds the drop too.
        global_days = int(effective_flags(tenant_id=None)["retentionDays"])
        keep_after = min([c for _, _, c in cutoffs.values()] + [now - timedelta(days=global_days)])
        for month in _droppable_months(now=now, keep_after=keep_after):
            if dry_run:
                report.partitions_dropped += [
                    partitions.partition_name(t, month) for t in ("events_enriched", "ingest_event")
                ]
            else:
                report.partitions_dropped += _drop_month(month)
        if report.partitions_dropped and not dry_run:
            metrics.LIFECYCLE_PARTITIONS_DROPPED.inc(len(report.partitions_dropped))
            audit_record(
                actor=actor,
                action="retention.partitions_drop",
                tenant_id=None,
                target=",".join(report.partitions_dropped),
                new={"partitions": report.partitions_dropped, "before": keep_after.isoformat()},
            )
    for tid, (slug, days, cutoff) in cutoffs.items():
        result = TenantRetention(slug=slug, retention_days=days, cutoff=cutoff)
        params = {"cutoff": cutoff, "key_cutoff": cutoff - idempotency_grace()}
        old_events = "AND received_at < %(cutoff)s"
        resolved = "AND resolved_at IS NOT NULL AND resolved_at < %(cutoff)s"
        old_keys = "AND received_at < %(key_cutoff)s"
        if dry_run:
            result.events = _count_rows("ingest_event", old_events, params, tid)
            result.enriched = _count_rows("events_enriched", old_events, params, tid)
            result.dead_letters = _count_rows("ingest_deadletter", resolved, params, tid)
            result.idempotency_keys = _count_rows("ingest_idempotency", old_keys, params, tid)
        else:
            result.events, result.enriched, result.dead_letters = _events_delete_batches(
                tenant_id=tid, where=old_events, params=params, erase=False, limit=limit
            )
            tenant_where = "tenant_id = %(tenant)s::uuid "
            for table, where, attr in (
                ("ingest_deadletter", resolved, "dead_letters"),
                ("ingest_idempotency", old_keys, "idempotency_keys"),
            ):
                while True:
                    with tenant_scope(tid):
                        n = _ctid_delete(
                            table, tenant_where + where, {**params, "tenant": tid}, limit=limit
                        )
                    setattr(result, attr, getattr(result, attr) + n)
                    if n < limit:
                        break
            _count_deleted("retention", result.events, result.enriched, result.dead_letters)
            metrics.LIFECYCLE_DELETED.labels(reason="retention", table="ingest_idempotency").inc(
                result.idempotency_keys
            )
            if result.events or result.enriched or result.dead_letters or result.idempotency_keys:
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


def _count_deleted(reason: str, events: int, enriched: int, letters: int) -> None:
    for table, n in (
        ("ingest_event", events),
        ("events_enriched", enriched),
        ("ingest_deadletter", letters),
    ):
        metrics.LIFECYCLE_DELETED.labels(reason=reason, table=table).inc(n)


# ---------------------------------------------------------------------------------------------
# erasure


def subject_digest(subject_id: str) -> str:
    """A keyed digest of a subject id: audit rows can prove an erasure without keeping the id."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Erasure:
    """What one events_erase call removed."""

    events: int
    enriched: int
    dead_letters: int


def events_erase(
    *,
    tenant_id: uuid.UUID | str,
    subject_id: str,
    before: datetime | None = None,
    actor: str,
    user=None,
    limit: int = BATCH,
) -> Erasure:
    """Remove a subject's events (received before `before`, if given) and all derived rows.

    The events' idempotency keys stay, marked erased (no event data), so a resend of an erased
    event is answered duplicate and not stored again. Audited with counts and a keyed digest of
    the subject id, never the id or the data.
    """
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 255:
        raise ValueError("subject id: 1 to 255 characters")
    tid = str(uuid.UUID(str(tenant_id)))
    where = "AND subject_id = %(subject)s"
    params: dict = {"subject": subject_id}
    if before is not None:
        where += " AND received_at < %(before)s"
        params["before"] = before
    events, enriched, letters = _events_delete_batches(
        tenant_id=tid, where=where, params=params, erase=True, limit=limit
    )
    _count_deleted("erasure", events, enriched, letters)
    audit_record(
        actor=actor,
        user=user,
        action="events.erase",
        tenant_id=tid,
        target=f"subject:{subject_digest(subject_id)}",
        new={
            "events": events,
            "enriched": enriched,
            "dead_letters": letters,
            "before": before.isoformat() if before else None,
        },
    )
    logger.info("subject erased", extra={"events": events, "enriched": enriched})
    return Erasure(events=events, enriched=enriched, dead_letters=letters)


# ---------------------------------------------------------------------------------------------
# offboarding

# Tenant-owned tables that stay after offboarding: the tombstone and its audit trail, the
# (revoked) keys and devices and (disabled) webhook sources the trail names, flag history.
_KEPT = frozenset(
    {
        "tenants_tenant",
        "tenants_auditlog",
        "tenants_signingkey",
        "tenants_device",
        "tenants_webhooksource",
        "flags_flagchange",
    }
)
_PARTITIONED = frozenset({"ingest_event", "events_enriched"})


def _other_tenant_tables() -> list[str]:
    """Every other tenant-owned table, in any app (found through the models, no imports)."""
    tables = set()
    for model in apps.get_models():
        try:
            field_ = model._meta.get_field("tenant")
        except FieldDoesNotExist:
            continue
        if getattr(field_.remote_field, "model", None) is Tenant:
            tables.add(model._meta.db_table)
    return sorted(tables - _KEPT - _PARTITIONED - {"ingest_deadletter"})


@dataclass
class Offboarding:
    """What tenant_offboard did (deleted rows per table, keys revoked, sources disabled)."""

    slug: str
    already_done: bool = False
    keys_revoked: int = 0
    sources_disabled: int = 0
    deleted: dict[str, int] = field(default_factory=dict)


def _offboarded(tenant_id: str) -> bool:
    with system_scope("lifecycle"):
        return AuditLog.objects.filter(tenant_id=tenant_id, action="tenant.offboard").exists()


def tenant_offboard(
    *, tenant: Tenant, actor: str, user=None, limit: int = BATCH, on_batch=None
) -> Offboarding:
    """Revoke every key and source of a tenant, delete all its data in batches, keep a tombstone.

    Resumable: each step is idempotent and the deletes are batches, so after a crash the same
    call carries on where it stopped. The tenant row stays (status offboarded) with its audit
    trail. `on_batch(table, n)` is called after each batch (progress output).
    """
    tid = str(tenant.id)
    report = Offboarding(slug=tenant.slug)
    if _offboarded(tid):
        report.already_done = True
        return report
    audit_record(
        actor=actor, user=user, action="tenant.offboard.start", tenant_id=tid, target=tenant.slug
    )
    # First nothing new gets in: the tenant is suspended (403 at once), then keys and sources go.
    tenant_suspend(tenant=tenant, actor=actor, user=user)
    with tenant_scope(tid):
        keys = list(
            SigningKey.objects.filter(tenant_id=tid).exclude(status=SigningKey.Status.REVOKED)
        )
    for key in keys:
        report.keys_revoked += int(signing_key_revoke(key=key, actor=actor, user=user))
    for source in sources_of_tenant(tenant_id=tenant.id):
        if source.enabled:
            source_set_enabled(source_id=source.source_id, enabled=False, actor=actor, user=user)
            report.sources_disabled += 1

    def progress(table: str, n: int) -> None:
        report.deleted[table] = report.deleted.get(table, 0) + n
        if on_batch is not None:
            on_batch(table, n)

    events, enriched, letters = _events_delete_batches(
        tenant_id=tid, where="", params={}, erase=False, limit=limit
    )
    progress("ingest_event", events)
    progress("events_enriched", enriched)
    progress("ingest_deadletter", letters)
    for table in ("events_enriched", "ingest_deadletter", *_other_tenant_tables()):
        while True:
            with tenant_scope(tid):
                if table in _PARTITIONED:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"DELETE FROM {table} WHERE (tenant_id, id, received_at) IN ("
                            f"SELECT tenant_id, id, received_at FROM {table} "
                            "WHERE tenant_id = %(tenant)s::uuid LIMIT %(limit)s)",
                            {"tenant": tid, "limit": limit},
                        )
                        n = cursor.rowcount
                else:
                    n = _ctid_delete(
                        table, "tenant_id = %(tenant)s::uuid", {"tenant": tid}, limit=limit
                    )
            progress(table, n)
            if n < limit:
                break
    for table, n in report.deleted.items():
        metrics.LIFECYCLE_DELETED.labels(reason="offboard", table=table).inc(n)
    with system_scope("lifecycle"):
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDED)
    audit_record(
        actor=actor,
        user=user,
        action="tenant.offboard",
        tenant_id=tid,
        target=tenant.slug,
        old={"status": tenant.status},
        new={
            "status": Tenant.Status.OFFBOARDED,
            "keys_revoked": report.keys_revoked,
            "sources_disabled": report.sources_disabled,
            "deleted": {t: n for t, n in report.deleted.items() if n},
        },
    )
    logger.info("tenant offboarded", extra={"tenant_slug": tenant.slug})
    return report
