"""`manage.py reconcile`: the drift table, --date and --tenant, refusals."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from reconcile.models import ReconcileRun
from tenants.scope import system_scope
from tests.factories import TenantFactory
from tests.helpers import noon


def _run(*args) -> list[str]:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue().splitlines()


def test_reconcile_command_by_default_prints_yesterdays_table_for_every_tenant(
    db, ledger, yesterday
):
    ledger(TenantFactory(slug="acme"), 200, enriched=196, dead=1, received_at=noon(yesterday))
    TenantFactory(slug="zeta")

    lines = _run()

    assert lines[0].split() == [
        "tenant",
        "day",
        "accepted",
        "enriched",
        "dead",
        "pending",
        "drift",
        "grade",
    ]
    day = yesterday.isoformat()
    assert lines[1].split() == ["acme", day, "200", "196", "1", "3", "2.000%", "CRITICAL"]
    assert lines[2].split() == ["zeta", day, "0", "0", "0", "0", "0.000%", "OK"]
    assert lines[3] == f"window {day} 00:00 - {yesterday + timedelta(days=1)} 00:00 UTC; " + (
        "2 tenant(s) reconciled"
    )
    assert lines[4].startswith("health: CRITICAL (drift over 1.0%: acme 2.000%")


def test_reconcile_command_with_date_and_tenant_reconciles_only_that(db, ledger, yesterday):
    day = yesterday - timedelta(days=5)
    ledger(TenantFactory(slug="acme"), 3, enriched=3, received_at=noon(day))
    other = TenantFactory(slug="other")

    lines = _run("--date", day.isoformat(), "--tenant", "acme")

    assert lines[1].split()[:4] == ["acme", day.isoformat(), "3", "3"]
    assert len([line for line in lines if line.startswith(("acme", "other"))]) == 1
    with system_scope("test"):
        assert list(ReconcileRun.objects.values_list("tenant__slug", "day")) == [("acme", day)]
        assert not ReconcileRun.objects.filter(tenant=other).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "26/11/2026"], "--date wants YYYY-MM-DD"),
        (["--date", "2999-01-01"], "has not started yet"),
        (["--tenant", "nobody"], "no tenant 'nobody'"),
    ],
)
def test_reconcile_command_with_bad_input_is_refused(db, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_reconcile_command_with_a_failing_tenant_names_it_and_fails(db, yesterday, locked_run):
    stuck = TenantFactory(slug="stuck")
    _run()
    locked_run(stuck.id)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"reconcile failed for 1 tenant\(s\)"):
        call_command("reconcile", stdout=io.StringIO(), stderr=err)

    assert err.getvalue().startswith("stuck: ")
