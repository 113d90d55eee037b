"""drift_compute: counts per tenant and UTC day in SQL, upserted runs, isolation, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from prometheus_client import REGISTRY

from reconcile import services
from reconcile.errors import ReconcileError
from reconcile.models import ReconcileRun
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import noon


def _runs(tenant):
    with tenant_scope(tenant.id):
        return list(ReconcileRun.objects.filter(tenant=tenant).order_by("day"))


def test_drift_compute_with_some_events_not_enriched_records_counts_and_ratio(
    db, ledger, yesterday
):
    tenant = TenantFactory(slug="acme")
    ledger(tenant, 200, enriched=190, dead=4, received_at=noon(yesterday))
    # Other days of the same tenant stay out of the count.
    ledger(tenant, 7, received_at=noon(yesterday - timedelta(days=1)))
    ledger(tenant, 3, enriched=3, received_at=noon(yesterday) + timedelta(hours=12))

    outcome = services.drift_compute(day=yesterday)

    assert outcome.failed == {}
    [run] = outcome.runs
    assert (run.slug, run.day, run.accepted, run.enriched, run.dead_lettered, run.pending) == (
        "acme",
        yesterday,
        200,
        190,
        4,
        6,
    )
    assert run.drift == pytest.approx(0.05)
    assert run.window_end - run.window_start == timedelta(days=1)
    [row] = _runs(tenant)
    assert (row.day, row.accepted, row.enriched, row.dead_lettered) == (yesterday, 200, 190, 4)
    assert row.drift == pytest.approx(0.05)


def test_drift_compute_with_all_enriched_or_no_events_records_zero_drift(db, ledger, yesterday):
    full = TenantFactory(slug="full")
    TenantFactory(slug="empty")
    ledger(full, 20, enriched=20, received_at=noon(yesterday))

    outcome = services.drift_compute(day=yesterday)

    drifts = {r.slug: (r.accepted, r.enriched, r.drift) for r in outcome.runs}
    assert drifts == {"full": (20, 20, 0.0), "empty": (0, 0, 0.0)}


def test_drift_compute_rerun_updates_the_same_row(db, ledger, yesterday):
    tenant = TenantFactory()
    events = ledger(tenant, 10, enriched=5, received_at=noon(yesterday))
    services.drift_compute(day=yesterday)
    [first] = _runs(tenant)
    assert first.drift == pytest.approx(0.5)

    from ingest.services.enrich import events_enrich

    events_enrich(tenant_id=tenant.id, event_ids=[e.id for e in events])
    services.drift_compute(day=yesterday)
    services.drift_compute(day=yesterday)

    [again] = _runs(tenant)
    assert again.id == first.id
    assert (again.accepted, again.enriched, again.drift) == (10, 10, 0.0)
    assert again.computed_at > first.computed_at


def test_drift_compute_for_tenant_a_never_counts_tenant_b_events(db, ledger, yesterday):
    a = TenantFactory(slug="a")
    b = TenantFactory(slug="b")
    ledger(a, 10, enriched=10, received_at=noon(yesterday))
    ledger(b, 50, enriched=0, received_at=noon(yesterday))

    outcome = services.drift_compute(day=yesterday, tenant_id=a.id)

    assert [(r.slug, r.accepted, r.enriched, r.drift) for r in outcome.runs] == [("a", 10, 10, 0.0)]
    assert _runs(b) == []
    outcome = services.drift_compute(day=yesterday)
    assert {r.slug: (r.accepted, r.drift) for r in outcome.runs} == {
        "a": (10, 0.0),
        "b": (50, 1.0),
    }
    # Each tenant's scope sees only its own run.
    with tenant_scope(a.id):
        assert list(ReconcileRun.objects.values_list("tenant__slug", flat=True)) == ["a"]


def test_drift_count_in_tenant_a_scope_with_tenant_b_id_sees_nothing(db, ledger, yesterday):
    """The RLS wall behind the SQL filter: a wrong tenant parameter counts zero, writes nothing."""
    a = TenantFactory(slug="a")
    b = TenantFactory(slug="b")
    ledger(b, 5, received_at=noon(yesterday))
    start, end = services.day_window(day=yesterday, now=datetime.now(UTC))
    params = {"day": yesterday, "start": start, "end": end, "run_at": datetime.now(UTC)}
    with tenant_scope(a.id), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingest_event WHERE tenant_id = %s", [str(b.id)])
        assert cursor.fetchone()[0] == 0
        with (
            pytest.raises(DatabaseError, match="row-level security"),
            transaction.atomic(),
            connection.cursor() as inner,
        ):
            inner.execute(services._UPSERT_SQL, {**params, "tenant": str(b.id)})
    with system_scope("test"):
        assert not ReconcileRun.objects.filter(tenant=b).exists()


def test_drift_compute_today_leaves_out_events_younger_than_the_settle_time(db, ledger):
    tenant = TenantFactory()
    now = datetime.now(UTC)
    today = now.date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    if now - start < timedelta(minutes=30):
        pytest.skip("needs 30 minutes of today behind us")
    ledger(tenant, 4, enriched=1, received_at=start + timedelta(minutes=1))
    ledger(tenant, 6, received_at=now - timedelta(seconds=30))  # still in flight

    [run] = services.drift_compute(day=today).runs

    assert (run.accepted, run.enriched) == (4, 1)
    assert now - services.SETTLE <= run.window_end <= datetime.now(UTC) - services.SETTLE
    [run] = services.drift_compute(day=today, settle=timedelta(0)).runs
    assert (run.accepted, run.enriched) == (10, 1)


def test_drift_compute_for_a_future_day_is_refused(db):
    with pytest.raises(ReconcileError, match="has not started"):
        services.drift_compute(day=datetime.now(UTC).date() + timedelta(days=1))


def test_drift_compute_sets_drift_gauge_last_run_and_run_counter(db, ledger, yesterday):
    tenant = TenantFactory(slug="gauged")
    ledger(tenant, 100, enriched=98, received_at=noon(yesterday))
    ok_before = REGISTRY.get_sample_value("codex_reconcile_runs_total", {"outcome": "ok"}) or 0

    services.drift_compute(day=yesterday)

    assert REGISTRY.get_sample_value(
        "codex_reconcile_drift_ratio", {"tenant": "gauged"}
    ) == pytest.approx(0.02)
    last = REGISTRY.get_sample_value("codex_reconcile_last_run_timestamp_seconds")
    assert last == pytest.approx(datetime.now(UTC).timestamp(), abs=60)
    assert (
        REGISTRY.get_sample_value("codex_reconcile_runs_total", {"outcome": "ok"}) == ok_before + 1
    )


def test_drift_compute_with_one_tenant_failing_records_the_others_and_reports_it(
    db, ledger, yesterday, locked_run
):
    ledger(TenantFactory(slug="fine"), 5, enriched=5, received_at=noon(yesterday))
    stuck = TenantFactory(slug="stuck")
    services.drift_compute(day=yesterday)
    last_before = REGISTRY.get_sample_value("codex_reconcile_last_run_timestamp_seconds")
    errors_before = REGISTRY.get_sample_value("codex_reconcile_runs_total", {"outcome": "error"})
    locked_run(stuck.id)

    outcome = services.drift_compute(day=yesterday)

    assert [r.slug for r in outcome.runs] == ["fine"]
    assert list(outcome.failed) == ["stuck"]
    assert "lock timeout" in outcome.failed["stuck"]
    errors = REGISTRY.get_sample_value("codex_reconcile_runs_total", {"outcome": "error"})
    assert errors == (errors_before or 0) + 1
    # A pass with a failure does not count as a completed run for the staleness alert.
    assert REGISTRY.get_sample_value("codex_reconcile_last_run_timestamp_seconds") == last_before
