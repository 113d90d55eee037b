"""The nightly beat job: its schedule entry, and one pass over yesterday and today."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings

from codex.celery import app
from reconcile import tasks
from reconcile.models import ReconcileRun
from tenants.scope import tenant_scope
from tests.reconcile.conftest import noon


def test_beat_schedule_has_nightly_reconcile_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-nightly"]

    assert entry["task"] == "reconcile.tasks.reconcile_nightly"
    assert entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {2}
    assert entry["schedule"].minute == {15}
    assert 0 < entry["options"]["expires"] <= 24 * 3600


def test_reconcile_nightly_records_yesterday_and_today_in_one_run(
    tenant_factory, ledger, yesterday
):
    tenant = tenant_factory()
    ledger(tenant, 5, enriched=4, received_at=noon(yesterday))

    summary = tasks.reconcile_nightly()

    today = yesterday + timedelta(days=1)
    assert summary == {
        yesterday.isoformat(): {"tenants": 1, "failed": 0},
        today.isoformat(): {"tenants": 1, "failed": 0},
    }
    with tenant_scope(tenant.id):
        runs = list(ReconcileRun.objects.order_by("day").values_list("day", "accepted", "run_at"))
    assert [(day, accepted) for day, accepted, _ in runs] == [(yesterday, 5), (today, 0)]
    assert runs[0][2] == runs[1][2]  # one pass: the grade looks at both days
