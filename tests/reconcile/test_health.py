"""The reconcile health grade: staleness and size thresholds, never-run, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconcile import selectors, services
from reconcile.selectors import Grade
from tests.factories import TenantFactory
from tests.helpers import noon


@pytest.mark.parametrize(
    ("hours", "grade"),
    [
        (0, Grade.OK),
        (25.9, Grade.OK),
        (26, Grade.WARNING),
        (49.9, Grade.WARNING),
        (50, Grade.CRITICAL),
    ],
)
def test_staleness_grade_at_thresholds(hours, grade):
    assert selectors.staleness_grade(timedelta(hours=hours)) == grade


@pytest.mark.parametrize(
    ("drift", "grade"),
    [
        (0.0, Grade.OK),
        (0.001, Grade.OK),
        (0.0011, Grade.WARNING),
        (0.01, Grade.WARNING),
        (0.0101, Grade.CRITICAL),
        (1.0, Grade.CRITICAL),
    ],
)
def test_drift_grade_at_thresholds(drift, grade):
    assert selectors.drift_grade(drift) == grade


def test_health_with_no_run_ever_is_warning_no_run_yet(db):
    TenantFactory()

    health = selectors.reconcile_health()

    assert health.grade == Grade.WARNING
    assert health.reasons == ["no run yet"]
    assert health.last_run_at is None


def test_health_after_a_fresh_clean_run_is_ok(db, ledger, yesterday):
    tenant = TenantFactory(slug="clean")
    ledger(tenant, 1000, enriched=999, received_at=noon(yesterday))  # 0.1%: still OK
    services.drift_compute(day=yesterday)

    health = selectors.reconcile_health()

    assert health.grade == Grade.OK
    assert [r.slug for r in health.worst] == ["clean"]
    assert health.worst[0].drift == pytest.approx(0.001)
    assert "last run 0 h ago" in health.reasons[0]


@pytest.mark.parametrize(
    ("enriched", "grade"), [(995, Grade.WARNING), (989, Grade.CRITICAL)], ids=["0.5%", "1.1%"]
)
def test_health_with_drift_over_threshold_grades_and_names_the_tenant(
    db, ledger, yesterday, enriched, grade
):
    ledger(TenantFactory(slug="fine"), 10, enriched=10, received_at=noon(yesterday))
    ledger(TenantFactory(slug="leaky"), 1000, enriched=enriched, received_at=noon(yesterday))
    services.drift_compute(day=yesterday)

    health = selectors.reconcile_health()

    assert health.grade == grade
    assert [r.slug for r in health.worst] == ["leaky", "fine"]
    [reason] = health.reasons
    assert reason.startswith("drift over ")
    assert f"leaky {(1000 - enriched) / 1000:.3%} on {yesterday}" in reason


@pytest.mark.parametrize(
    ("age_hours", "grade"), [(27, Grade.WARNING), (51, Grade.CRITICAL)], ids=["27h", "51h"]
)
def test_health_with_a_stale_last_run_grades_by_age(db, yesterday, age_hours, grade):
    TenantFactory(slug="old")
    now = datetime.now(UTC)
    services.drift_compute(day=yesterday - timedelta(days=2), run_at=now - timedelta(hours=40))

    health = selectors.reconcile_health(now=now - timedelta(hours=40) + timedelta(hours=age_hours))

    assert health.grade == grade
    assert health.reasons == [
        f"last run {age_hours} h ago (over {26 if grade == Grade.WARNING else 50} h) for old"
    ]


def test_health_grade_is_the_worst_of_staleness_and_size(db, ledger, yesterday):
    ledger(TenantFactory(slug="leaky"), 100, enriched=90, received_at=noon(yesterday))
    now = datetime.now(UTC)
    services.drift_compute(day=yesterday, run_at=now - timedelta(hours=30))

    health = selectors.reconcile_health(now=now)

    assert health.grade == Grade.CRITICAL
    assert len(health.reasons) == 2  # stale (WARNING) and drift (CRITICAL)


def test_health_uses_the_worst_day_of_each_tenants_last_run_only(db, ledger, yesterday):
    tenant = TenantFactory(slug="mended")
    ledger(tenant, 10, received_at=noon(yesterday - timedelta(days=3)))  # old, 100% drift
    ledger(tenant, 10, enriched=10, received_at=noon(yesterday))
    services.drift_compute(day=yesterday - timedelta(days=3))
    services.drift_compute(day=yesterday)

    health = selectors.reconcile_health()

    assert health.grade == Grade.OK
    assert health.worst[0].day == yesterday


def test_health_tenant_never_reconciled_warns_only_once_due(db, yesterday):
    TenantFactory(slug="ran")
    services.drift_compute(day=yesterday)
    TenantFactory(slug="newcomer")
    TenantFactory(slug="forgotten", created_at=datetime.now(UTC) - timedelta(days=3))

    health = selectors.reconcile_health()

    assert health.grade == Grade.WARNING
    assert health.reasons == ["no run yet for forgotten"]
