"""Heal what reconcile finds: re-enrich a window's pending events through ingest's services.

Pending is what reconcile counts as pending: received in the window, no events_enriched row,
no open dead letter (those are the DLQ's to replay: replay_dlq). That includes events the ledger
marks enriched (`ingest_event.enriched_at`) whose events_enriched row was later deleted or lost:
their marker is cleared so that ingest's enrichment service takes them again. ingest's ledger is
written by ingest (`ingest.services.repair.events_pending_reenrich`); this module audits, counts
and records the repaired days again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError

from flags.selectors import effective_flags
from ingest.services.enrich import DRAIN_BATCH
from ingest.services.repair import events_pending_reenrich
from reconcile import metrics
from reconcile.services import DayDrift, ReconcileOutcome, drift_compute
from tenants.audit import audit_record

logger = logging.getLogger(__name__)

AUTO_REPAIR_FLAG = "reconcileAutoRepair"
NIGHTLY_ACTOR = "beat:reconcile"


@dataclass(frozen=True)
class RepairReport:
    """What one repair did for one tenant's window."""

    tenant: str
    day: str
    window_start: datetime
    window_end: datetime
    pending: int  # events found pending: no events_enriched row, no open dead letter
    lost: int  # of those, marked enriched in the ledger (their events_enriched row had gone)
    reenriched: int  # enriched again now, by ingest.services.enrich.events_enrich
    failed: int  # enrichment failed again: left due for the drain (its retries, then the DLQ)
    enqueued: bool  # the drain was woken for the failed ones (else the sweeper, within ~3 min)

    def as_json(self) -> dict:
        return {
            "tenant": self.tenant,
            "day": self.day,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "pending": self.pending,
            "lost": self.lost,
            "reenriched": self.reenriched,
            "failed": self.failed,
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
    trigger: str = "command",
    batch: int = DRAIN_BATCH,
) -> RepairReport:
    """Re-enrich the pending events of one tenant's reconcile window now (audited, idempotent).

    ingest's `events_pending_reenrich` does the work, batch by batch in the tenant's scope: the
    events reconcile counts as pending get their ledger marker cleared and go through ingest's
    enrichment service (`events_enrich`, what a replay uses; the drain writes rows the same way).
    One that fails again stays due: the drain is woken and applies its retries and the
    dead-letter queue. A window with nothing pending changes nothing and writes no audit row.
    """
    done = events_pending_reenrich(
        tenant_id=tenant_id, start=window_start, end=window_end, batch=batch
    )
    report = RepairReport(
        slug,
        day,
        window_start,
        window_end,
        done.pending,
        done.lost,
        done.reenriched,
        done.failed,
        done.enqueued,
    )
    if done.reenriched:
        metrics.REPAIRED.labels(trigger=trigger, outcome="reenriched").inc(done.reenriched)
    if done.failed:
        metrics.REPAIRED.labels(trigger=trigger, outcome="failed").inc(done.failed)
    if done.pending:
        audit_record(
            actor=actor,
            action="reconcile.repair",
            tenant_id=tenant_id,
            target=f"{slug} {day}",
            old={"pending": done.pending, "lost": done.lost},
            new={
                "reenriched": done.reenriched,
                "failed": done.failed,
                "drain_enqueued": done.enqueued,
            },
            user=user,
        )
    logger.info(
        "reconcile repair",
        extra={
            "tenant": slug,
            "day": day,
            "pending": done.pending,
            "lost": done.lost,
            "reenriched": done.reenriched,
            "failed": done.failed,
            "trigger": trigger,
        },
    )
    return report


def drift_repair(
    *, outcome: ReconcileOutcome, actor: str, user=None, trigger: str = "command"
) -> list[RepairReport]:
    """Repair every run of a drift_compute outcome (the command), recording repaired days again.

    The re-recorded runs keep the pass's run_at, so the Health card and the drift gauge show
    what is left after the repair, not what the repair healed (the audit rows and
    codex_reconcile_repaired_events_total keep that).
    """
    return [
        _repair_and_record(run, outcome, actor=actor, user=user, trigger=trigger)
        for run in outcome.runs
    ]


def drift_auto_repair(*, outcome: ReconcileOutcome) -> list[RepairReport]:
    """The nightly job's repair: pending runs of tenants whose reconcileAutoRepair flag is on.

    The flag is off by default. One tenant's failure is logged and does not stop the others.
    """
    reports = []
    for run in outcome.runs:
        if run.pending <= 0 or not effective_flags(tenant_id=run.tenant_id)[AUTO_REPAIR_FLAG]:
            continue
        try:
            reports.append(
                _repair_and_record(run, outcome, actor=NIGHTLY_ACTOR, user=None, trigger="nightly")
            )
        except DatabaseError:
            metrics.REPAIRED.labels(trigger="nightly", outcome="error").inc(run.pending)
            logger.exception(
                "reconcile auto-repair failed for a tenant",
                extra={"tenant": run.slug, "day": run.day.isoformat()},
            )
    return reports


def _repair_and_record(
    run: DayDrift, outcome: ReconcileOutcome, *, actor: str, user, trigger: str
) -> RepairReport:
    report = reconcile_repair(
        tenant_id=run.tenant_id,
        slug=run.slug,
        day=run.day.isoformat(),
        window_start=run.window_start,
        window_end=run.window_end,
        actor=actor,
        user=user,
        trigger=trigger,
    )
    if report.pending:
        drift_compute(day=run.day, tenant_id=run.tenant_id, run_at=outcome.run_at)
    return report
