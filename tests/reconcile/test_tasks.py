"""The nightly beat job: its schedule entry, and one pass over yesterday and today."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings

from codex.celery import app
from reconcile import tasks
from reconcile.models import ReconcileRun
from tenants.scope import tenant_scope
from tests.helpers import noon


def test_beat_schedule_has_nightly_reconcile_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-nightly"]

    assert entry["task"] == "reconcile.tasks.reconcile_nightly"
    assert entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {2}
    assert entry["schedule"].minute == {15}
    assert 0 < entry["options"]["expires"] <= 24 * 3600


def test_reconcile_nightly_records_yesterday_and_today_in_one_run(
    tenant_factory, ledger, yesterday, settings
):
    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 0
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


def test_reconcile_nightly_redoes_the_look_back_days_so_late_enrichment_shows(
    tenant_factory, ledger, yesterday, settings
):
    from ingest.services.enrich import events_enrich

    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 2
    tenant = tenant_factory()
    three_days_ago = yesterday - timedelta(days=2)
    events = ledger(tenant, 4, enriched=1, received_at=noon(three_days_ago))
    summary = tasks.reconcile_nightly()
    assert sorted(summary) == [(yesterday + timedelta(days=n)).isoformat() for n in (-2, -1, 0, 1)]

    def run_of(day):
        with tenant_scope(tenant.id):
            return ReconcileRun.objects.get(tenant=tenant, day=day)

    assert (run_of(three_days_ago).accepted, run_of(three_days_ago).enriched) == (4, 1)
    # The late ones get enriched; the next night's pass sees it for that day too.
    events_enrich(tenant_id=tenant.id, event_ids=[e.id for e in events])
    tasks.reconcile_nightly()
    assert (run_of(three_days_ago).enriched, run_of(three_days_ago).drift) == (4, 0.0)
