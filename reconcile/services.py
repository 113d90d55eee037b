"""Writes of the reconcile app: count the ledger against events_enriched, record the runs."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from codex import error_codes as codes
from reconcile import metrics, selectors
from reconcile.errors import ReconcileError
from tenants.models import Tenant
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)

# Events received in the last SETTLE are left out of the count: enrichment, its retries and the
# sweeper (2 min) get that long before a missing events_enriched row counts as drift.
SETTLE = timedelta(minutes=10)

# One statement per tenant and day. The ledger is read by its (tenant_id, received_at) index
# (ingest_event_received); each of the day's events is then looked up by the (tenant_id, event_id)
# keys of events_enriched and ingest_deadletter. (A plain join lets the planner hash the tenant's
# whole events_enriched history, which grows every day; the per-event probes grow with the day.)
_UPSERT_SQL = """
WITH day_events AS MATERIALIZED (
    SELECT e.id,
           EXISTS (
               SELECT 1 FROM events_enriched ee
               WHERE ee.tenant_id = e.tenant_id AND ee.event_id = e.id
                 AND ee.received_at = e.received_at  -- prunes to the event's partition
           ) AS enriched
    FROM ingest_event e
    WHERE e.tenant_id = %(tenant)s::uuid
      AND e.received_at >= %(start)s AND e.received_at < %(end)s
), counted AS (
    SELECT count(*) AS accepted,
           count(*) FILTER (WHERE enriched) AS enriched,
           count(*) FILTER (
               WHERE NOT enriched AND EXISTS (
                   SELECT 1 FROM ingest_deadletter d
                   WHERE d.tenant_id = %(tenant)s::uuid AND d.event_id = day_events.id
                     AND d.resolved_at IS NULL
               )
           ) AS dead_lettered
    FROM day_events
)
INSERT INTO reconcile_run
    (tenant_id, day, window_start, window_end, accepted, enriched, dead_lettered, drift,
     run_at, computed_at)
SELECT %(tenant)s::uuid, %(day)s, %(start)s, %(end)s, accepted, enriched, dead_lettered,
       CASE WHEN accepted = 0 THEN 0 ELSE (accepted - enriched)::float8 / accepted END,
       %(run_at)s, clock_timestamp()
FROM counted
ON CONFLICT (tenant_id, day) DO UPDATE SET
    window_start = EXCLUDED.window_start,
    window_end = EXCLUDED.window_end,
    accepted = EXCLUDED.accepted,
    enriched = EXCLUDED.enriched,
    dead_lettered = EXCLUDED.dead_lettered,
    drift = EXCLUDED.drift,
    run_at = EXCLUDED.run_at,
    computed_at = EXCLUDED.computed_at
RETURNING accepted, enriched, dead_lettered, drift, window_start, window_end
"""


@dataclass(frozen=True)
class DayDrift:
    """One tenant's reconciled day, as recorded in reconcile_run."""

    tenant_id: uuid.UUID
    slug: str
    day: date
    window_start: datetime
    window_end: datetime
    accepted: int
    enriched: int
    dead_lettered: int
    drift: float

    @property
    def pending(self) -> int:
        """Accepted, neither enriched nor dead-lettered."""
        return self.accepted - self.enriched - self.dead_lettered


@dataclass
class ReconcileOutcome:
    """What one drift_compute call did: the recorded days, and the tenants that failed."""

    day: date
    runs: list[DayDrift] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # slug -> error
    run_at: datetime | None = None  # the pass the runs belong to (a repair records them again)


def utc_today(now: datetime | None = None) -> date:
    """The current UTC day."""
    return (now or timezone.now()).astimezone(UTC).date()


def day_window(
    *, day: date, now: datetime, settle: timedelta = SETTLE
) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day, cut at now - settle while the day is still running."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = min(start + timedelta(days=1), now - settle)
    return start, max(start, end)


def drift_compute(
    *,
    day: date,
    tenant_id: uuid.UUID | str | None = None,
    run_at: datetime | None = None,
    settle: timedelta = SETTLE,
) -> ReconcileOutcome:
    """Reconcile one UTC day (of receipt) for one tenant or all: upsert a ReconcileRun each.

    The tenant list is cross-tenant work (system_scope("reconcile")); each tenant's count and
    upsert is one statement in its own tenant_scope, so RLS backs the tenant filter in the SQL and
    one tenant's failure does not stop the others. `run_at` groups the days of one pass.
    """
    now = timezone.now()
    run_at = run_at or now
    if day > utc_today(now):
        raise ReconcileError(f"{day} has not started yet (UTC)", code=codes.DAY_NOT_STARTED.code)
    start, end = day_window(day=day, now=now, settle=settle)
    with system_scope("reconcile"):
        # An offboarded tenant has nothing to reconcile and gets no new rows (docs/lifecycle.md).
        tenants = Tenant.objects.exclude(status=Tenant.Status.OFFBOARDED).order_by("slug")
        if tenant_id is not None:
            tenants = tenants.filter(id=tenant_id)
        targets = list(tenants.values_list("id", "slug"))
    outcome = ReconcileOutcome(day=day, run_at=run_at)
    params = {"day": day, "start": start, "end": end, "run_at": run_at}
    for tid, slug in targets:
        try:
            with tenant_scope(tid), connection.cursor() as cursor:
                # The per-event probes make the estimate large enough to trigger JIT, whose
                # compilation (~0.5 s) costs more than the count itself.
                cursor.execute("SET LOCAL jit = off")
                cursor.execute(_UPSERT_SQL, {**params, "tenant": str(tid)})
                accepted, enriched, dead, drift, w_start, w_end = cursor.fetchone()
        except DatabaseError as exc:
            metrics.RUNS.labels(outcome="error").inc()
            outcome.failed[slug] = f"{type(exc).__name__}: {exc}"
            logger.exception(
                "reconcile failed for a tenant", extra={"tenant": slug, "day": day.isoformat()}
            )
            continue
        metrics.RUNS.labels(outcome="ok").inc()
        outcome.runs.append(
            DayDrift(tid, slug, day, w_start, w_end, accepted, enriched, dead, float(drift))
        )
    drift_metrics_refresh(tenant_ids=[tid for tid, _ in targets])
    if not outcome.failed:
        metrics.LAST_RUN.set(time.time())
    worst = max(outcome.runs, key=lambda r: r.drift, default=None)
    logger.info(
        "reconcile done",
        extra={
            "day": day.isoformat(),
            "tenants": len(outcome.runs),
            "failed": len(outcome.failed),
            "max_drift": worst.drift if worst else 0.0,
        },
    )
    return outcome


def drift_metrics_refresh(*, tenant_ids: list[uuid.UUID] | None = None) -> None:
    """Set the drift gauge from PostgreSQL: each tenant's worst day of its last run."""
    for row in selectors.latest_runs(tenant_ids=tenant_ids):
        if row.run_at is not None:
            metrics.DRIFT.labels(tenant=row.slug).set(row.drift)
