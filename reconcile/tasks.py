"""Celery tasks of the reconcile app: the nightly drift job (beat)."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from reconcile import repair, services


# Every tenant in turn: far longer than the default limits, bounded all the same.
@shared_task(
    name="reconcile.tasks.reconcile_nightly", soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60
)
def reconcile_nightly(days: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Beat, nightly: reconcile every tenant for today so far, yesterday and the look-back days.

    CODEX_RECONCILE_LOOKBACK_DAYS days before yesterday are reconciled again, oldest first, so
    what changed them later (late enrichment, a DLQ replay, a repair) shows in their runs.
    `days` (ISO dates) overrides the default, e.g. to catch up a missed night by hand.
    With a tenant's reconcileAutoRepair flag on (off by default) its pending events are repaired
    as `reconcile --repair` does, and the repaired days recorded again.
    """
    run_at = timezone.now()
    today = services.utc_today(run_at)
    if days:
        wanted = [date.fromisoformat(d) for d in days]
    else:
        back = 1 + max(0, settings.CODEX_RECONCILE_LOOKBACK_DAYS)
        wanted = [today - timedelta(days=n) for n in range(back, -1, -1)]
    summary: dict[str, dict[str, int]] = {}
    for day in wanted:
        outcome = services.drift_compute(day=day, run_at=run_at)
        repairs = repair.drift_auto_repair(outcome=outcome)
        summary[day.isoformat()] = {
            "tenants": len(outcome.runs),
            "failed": len(outcome.failed),
            "repaired": sum(r.reenriched for r in repairs),
        }
    return summary
