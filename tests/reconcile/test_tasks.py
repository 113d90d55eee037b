"""The nightly beat job: its schedule entry, and one pass over yesterday and today."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings

from codex.celery import app
from ingest.models import EnrichedEvent
from reconcile import tasks
from reconcile.models import ReconcileRun
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import noon, set_flags


def test_beat_schedule_has_nightly_reconcile_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-nightly"]

    assert entry["task"] == "reconcile.tasks.reconcile_nightly"
    assert entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {2}
    assert entry["schedule"].minute == {15}
    assert 0 < entry["options"]["expires"] <= 24 * 3600


def test_reconcile_nightly_records_yesterday_and_today_in_one_run(db, ledger, yesterday, settings):
    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 0
    tenant = TenantFactory()
    ledger(tenant, 5, enriched=4, received_at=noon(yesterday))

    summary = tasks.reconcile_nightly()

    today = yesterday + timedelta(days=1)
    assert summary == {
        yesterday.isoformat(): {"tenants": 1, "failed": 0, "repaired": 0},
        today.isoformat(): {"tenants": 1, "failed": 0, "repaired": 0},
    }
    with tenant_scope(tenant.id):
        runs = list(ReconcileRun.objects.order_by("day").values_list("day", "accepted", "run_at"))
    assert [(day, accepted) for day, accepted, _ in runs] == [(yesterday, 5), (today, 0)]
    assert runs[0][2] == runs[1][2]  # one pass: the grade looks at both days


def test_reconcile_nightly_redoes_the_look_back_days_so_late_enrichment_shows(
    db, ledger, yesterday, settings
):
    from ingest.services.enrich import events_enrich

    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 2
    tenant = TenantFactory()
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


def _lose_enriched_rows(tenant, events) -> None:
    with tenant_scope(tenant.id):
        EnrichedEvent.objects.filter(tenant=tenant, event_id__in=[e.id for e in events]).delete()


def _state(tenant, day) -> tuple[int, int, set[int]]:
    """(accepted, enriched) of the day's recorded run, and the ids in events_enriched."""
    with tenant_scope(tenant.id):
        run = ReconcileRun.objects.get(tenant=tenant, day=day)
        ids = set(EnrichedEvent.objects.filter(tenant=tenant).values_list("event_id", flat=True))
    return run.accepted, run.enriched, ids


def _repair_audits() -> list[tuple[str, str]]:
    with system_scope("test"):
        return list(
            AuditLog.objects.filter(action="reconcile.repair").values_list("actor", "target")
        )


def test_reconcile_nightly_does_not_repair_while_reconcile_auto_repair_is_off(
    db, ledger, yesterday, settings
):
    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 0
    tenant = TenantFactory(slug="acme")
    events = ledger(tenant, 10, enriched=10, received_at=noon(yesterday))
    _lose_enriched_rows(tenant, events[:3])

    summary = tasks.reconcile_nightly()  # the flag's default: off

    assert summary[yesterday.isoformat()]["repaired"] == 0
    accepted, enriched, ids = _state(tenant, yesterday)
    assert (accepted, enriched, len(ids)) == (10, 7, 7)  # reported, not repaired
    assert _repair_audits() == []


def test_reconcile_nightly_repairs_what_it_found_when_reconcile_auto_repair_is_on(
    db, ledger, yesterday, settings
):
    settings.CODEX_RECONCILE_LOOKBACK_DAYS = 0
    tenant, other = TenantFactory(slug="acme"), TenantFactory(slug="zeta")
    events = ledger(tenant, 10, enriched=10, received_at=noon(yesterday))
    others = ledger(other, 4, enriched=4, received_at=noon(yesterday))
    _lose_enriched_rows(tenant, events[:3])
    _lose_enriched_rows(other, others[:1])
    set_flags(tenant, reconcileAutoRepair=True)  # zeta keeps the default (off)

    summary = tasks.reconcile_nightly()

    assert summary[yesterday.isoformat()] == {"tenants": 2, "failed": 0, "repaired": 3}
    accepted, enriched, ids = _state(tenant, yesterday)
    assert (accepted, enriched, ids) == (10, 10, {e.id for e in events})  # recorded healed
    assert _state(other, yesterday)[:2] == (4, 3)  # not its flag: reported only
    assert _repair_audits() == [("beat:reconcile", f"acme {yesterday.isoformat()}")]
    # The next night finds nothing left: no second repair, no second audit row.
    assert tasks.reconcile_nightly()[yesterday.isoformat()]["repaired"] == 0
    assert len(_repair_audits()) == 1
