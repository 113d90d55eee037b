"""Reads of the reconcile app: each tenant's last run, and the health grade built from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.db import connection
from django.utils import timezone

from reconcile.tenant_signals import DLQ_INFLOW_CRITICAL, TenantSignals, tenant_signals
from tenants.scope import system_scope

# Staleness: age of a tenant's last run. Beat runs nightly, so 26 h allows a slow night and
# 50 h means a whole night was missed.
STALE_WARNING = timedelta(hours=26)
STALE_CRITICAL = timedelta(hours=50)
# Size: the largest drift of the last run (0.001 = 0.1%). CRITICAL matches the "drift > 1%" alert.
DRIFT_WARNING = 0.001
DRIFT_CRITICAL = 0.01
# Reasons name at most this many tenants each.
REASON_TENANTS = 5


class Grade(StrEnum):
    """Health grade, worst last."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """Order of severity: OK 0, WARNING 1, CRITICAL 2."""
        return list(Grade).index(self)


def worst_grade(*grades: Grade) -> Grade:
    """The most severe of `grades` (OK when there are none)."""
    return max(grades, key=lambda g: g.rank, default=Grade.OK)


def staleness_grade(age: timedelta) -> Grade:
    """OK under 26 h, WARNING under 50 h, CRITICAL from then on."""
    if age < STALE_WARNING:
        return Grade.OK
    if age < STALE_CRITICAL:
        return Grade.WARNING
    return Grade.CRITICAL


def drift_grade(drift: float) -> Grade:
    """OK up to 0.1%, WARNING up to 1%, CRITICAL above 1%."""
    if drift <= DRIFT_WARNING:
        return Grade.OK
    if drift <= DRIFT_CRITICAL:
        return Grade.WARNING
    return Grade.CRITICAL


@dataclass(frozen=True)
class TenantRun:
    """A tenant and the worst day of its last reconcile run (run fields None: never run)."""

    tenant_id: uuid.UUID
    slug: str
    created_at: datetime
    run_at: datetime | None = None
    day: date | None = None
    drift: float = 0.0
    accepted: int = 0
    enriched: int = 0
    dead_lettered: int = 0

    @property
    def drift_percent(self) -> float:
        """Drift in percent, for display."""
        return self.drift * 100


# Per tenant: two probes of reconcile_run's (tenant_id, run_at) index, whatever its size.
_LATEST_SQL = """
SELECT t.id, t.slug, t.created_at, r.run_at, r.day, r.drift, r.accepted, r.enriched,
       r.dead_lettered
FROM tenants_tenant t
LEFT JOIN LATERAL (
    SELECT x.run_at, x.day, x.drift, x.accepted, x.enriched, x.dead_lettered
    FROM reconcile_run x
    WHERE x.tenant_id = t.id
      AND x.run_at = (SELECT max(y.run_at) FROM reconcile_run y WHERE y.tenant_id = t.id)
    ORDER BY x.drift DESC, x.day DESC
    LIMIT 1
) r ON true
{where}
ORDER BY t.slug
"""


def latest_runs(
    *, tenant_ids: list[uuid.UUID] | None = None, reason: str = "reconcile"
) -> list[TenantRun]:
    """Every tenant (or those in `tenant_ids`) with the worst day of its last run.

    `reason` names the system scope ("admin" for the Health card, which is logged quietly).
    """
    where, params = "", []
    if tenant_ids is not None:
        where, params = "WHERE t.id = ANY(%s::uuid[])", [[str(t) for t in tenant_ids]]
    with system_scope(reason), connection.cursor() as cursor:
        cursor.execute(_LATEST_SQL.format(where=where), params)
        rows = cursor.fetchall()
    return [
        TenantRun(tid, slug, created, run_at, day, float(drift or 0), acc or 0, enr or 0, dl or 0)
        for tid, slug, created, run_at, day, drift, acc, enr, dl in rows
    ]


@dataclass(frozen=True)
class Health:
    """The reconcile health grade, why, and the tenants with the largest drift."""

    grade: Grade
    reasons: list[str]
    last_run_at: datetime | None
    worst: list[TenantRun]
    checked_at: datetime
    # Tenants with open dead letters, DLQ inflow or ingestion warnings in the last hour.
    signals: list[TenantSignals] = field(default_factory=list)


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:.0f} h"


def _named(slugs: list[str]) -> str:
    shown = ", ".join(slugs[:REASON_TENANTS])
    more = len(slugs) - REASON_TENANTS
    return shown + (f" and {more} more" if more > 0 else "")


def reconcile_health(
    *, now: datetime | None = None, worst: int = 5, reason: str = "reconcile"
) -> Health:
    """Grade reconciliation OK / WARNING / CRITICAL from staleness and size, with reasons.

    Staleness is the age of each tenant's last run (a tenant younger than 26 h is not due yet);
    size is the largest drift of each tenant's last run. In the manner of Zulip's
    check_analytics_state, the reasons say what is wrong (or, when OK, what was checked).
    """
    now = now or timezone.now()
    rows = latest_runs(reason=reason)
    ran = [r for r in rows if r.run_at is not None]
    by_drift = sorted(ran, key=lambda r: (-r.drift, r.slug))
    signals = tenant_signals(now=now, reason=reason)
    signal_grades, signal_reasons = _signal_grades(signals)
    if not ran:
        grade = worst_grade(Grade.WARNING, *signal_grades)
        return Health(grade, ["no run yet", *signal_reasons], None, [], now, signals)

    grades: list[Grade] = []
    reasons: list[str] = []
    never = [r.slug for r in rows if r.run_at is None and now - r.created_at >= STALE_WARNING]
    if never:
        grades.append(Grade.WARNING)
        reasons.append(f"no run yet for {_named(never)}")

    by_age: dict[Grade, list[TenantRun]] = {}
    for r in ran:
        by_age.setdefault(staleness_grade(now - r.run_at), []).append(r)
    for grade in (Grade.CRITICAL, Grade.WARNING):
        stale = sorted(by_age.get(grade, []), key=lambda r: r.run_at)
        if stale:
            grades.append(grade)
            limit = _hours(STALE_CRITICAL if grade is Grade.CRITICAL else STALE_WARNING)
            reasons.append(
                f"last run {_hours(now - stale[0].run_at)} ago (over {limit}) "
                f"for {_named([r.slug for r in stale])}"
            )

    for grade in (Grade.CRITICAL, Grade.WARNING):
        drifting = [r for r in by_drift if drift_grade(r.drift) is grade]
        if drifting:
            grades.append(grade)
            limit = DRIFT_CRITICAL if grade is Grade.CRITICAL else DRIFT_WARNING
            details = [f"{r.slug} {r.drift:.3%} on {r.day}" for r in drifting]
            reasons.append(f"drift over {limit:.1%}: {_named(details)}")

    grades += signal_grades
    reasons += signal_reasons
    last_run_at = max(r.run_at for r in ran)
    grade = worst_grade(*grades)
    if grade is Grade.OK:
        reasons.append(
            f"last run {_hours(now - last_run_at)} ago; max drift {by_drift[0].drift:.3%} "
            f"({by_drift[0].slug}, {by_drift[0].day}); no open dead letters"
        )
    return Health(grade, reasons, last_run_at, by_drift[:worst], now, signals)


def _signal_grades(signals: list[TenantSignals]) -> tuple[list[Grade], list[str]]:
    """Grades and reasons from the tenants' dead letters and ingestion warnings.

    CRITICAL for a DLQ inflow of DLQ_INFLOW_CRITICAL+ in an hour; WARNING for open dead letters
    or spiking ingestion warnings.
    """
    grades: list[Grade] = []
    reasons: list[str] = []
    flooding = [s for s in signals if s.dlq_inflow_1h >= DLQ_INFLOW_CRITICAL]
    if flooding:
        grades.append(Grade.CRITICAL)
        details = [f"{s.slug} {s.dlq_inflow_1h}" for s in flooding]
        reasons.append(
            f"dead-letter inflow of {DLQ_INFLOW_CRITICAL}+ in the last hour: {_named(details)}"
        )
    parked = [s for s in signals if s.open_dead_letters]
    if parked:
        grades.append(Grade.WARNING)
        details = [f"{s.slug} {s.open_dead_letters}" for s in parked]
        reasons.append(f"open dead letters: {_named(details)}")
    spiking = [s for s in signals if s.warnings_spiking]
    if spiking:
        grades.append(Grade.WARNING)
        details = [f"{s.slug} {s.warnings_1h}" for s in spiking]
        reasons.append(f"ingestion warnings spiking (last hour): {_named(details)}")
    return grades, reasons
