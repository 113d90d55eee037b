"""The admin index Health card and the read-only reconcile run admin."""

from __future__ import annotations

import pytest

from reconcile import services
from tests.factories import TenantFactory
from tests.helpers import noon, staff_client

pytestmark = pytest.mark.django_db


def test_admin_index_without_runs_shows_health_card_warning_no_run_yet():
    TenantFactory()

    page = staff_client(superuser=True).get("/admin/").content.decode()

    assert 'id="reconcile-health" data-grade="WARNING"' in page
    assert "no run yet" in page
    assert "never" in page
    # The card sits above the app list.
    assert page.index('id="reconcile-health"') < page.index('class="app-')


def test_admin_index_after_a_drifting_run_shows_critical_grade_and_worst_tenant(ledger, yesterday):
    ledger(TenantFactory(slug="leaky"), 100, enriched=95, dead=2, received_at=noon(yesterday))
    ledger(TenantFactory(slug="fine"), 10, enriched=10, received_at=noon(yesterday))
    services.drift_compute(day=yesterday)

    page = staff_client(superuser=True).get("/admin/").content.decode()

    assert 'data-grade="CRITICAL"' in page
    assert "drift 5.000% on " + yesterday.isoformat() in page
    assert "95 of 100 enriched, 2 dead-lettered" in page
    assert page.index(">leaky<") < page.index(">fine<")
    assert "UTC (0\xa0minutes ago)" in page
    assert "/admin/reconcile/reconcilerun/" in page


def test_admin_index_for_staff_without_reconcile_permission_hides_the_card():
    page = staff_client().get("/admin/").content.decode()

    assert "reconcile-health" not in page


def test_reconcile_run_admin_lists_runs_read_only(ledger, yesterday):
    ledger(TenantFactory(slug="acme"), 4, enriched=3, received_at=noon(yesterday))
    services.drift_compute(day=yesterday)
    operator = staff_client(superuser=True)

    listing = operator.get("/admin/reconcile/reconcilerun/")

    assert listing.status_code == 200
    page = listing.content.decode()
    assert "acme" in page
    assert "25.000%" in page
    assert operator.get("/admin/reconcile/reconcilerun/add/").status_code == 403
