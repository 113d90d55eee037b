"""Celery tasks of the reconcile app: the nightly drift job (beat)."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from reconcile import services


# Every tenant in turn: far longer than the default limits, bounded all the same.
@shared_task(
    name="reconcile.tasks.reconcile_nightly", soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60
)
def reconcile_nightly(days: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Beat, nightly: reconcile every tenant for yesterday and today so far (UTC), one pass.

    `days` (ISO dates) overrides the default, e.g. to catch up a missed night by hand.
    """
    run_at = timezone.now()
    today = services.utc_today(run_at)
    wanted = [date.fromisoformat(d) for d in days] if days else [today - timedelta(days=1), today]
    summary: dict[str, dict[str, int]] = {}
    for day in wanted:
        outcome = services.drift_compute(day=day, run_at=run_at)
        summary[day.isoformat()] = {"tenants": len(outcome.runs), "failed": len(outcome.failed)}
    return summary
