"""Migrations keep every tenant's rows, run as a managed database's owner (no superuser).

The kit (tests.migrationkit) writes rows of every kind through the real write path, then walks
the migrations back and forth one at a time and compares every tenant table per tenant (row
count and a checksum) after each step.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tenants import rls
from tenants.scope import system_scope
from tests.factories import TenantFactory
from tests.migrationkit import history_assert_kept, migration_data_write, migration_walk


def _print_counts(report: dict) -> None:
    for table, per_tenant in sorted(report.items()):
        rows = sum(n for n, _ in per_tenant.values())
        print(f"{table}: {rows} rows kept over {len(per_tenant)} tenants")


def test_the_partitioned_ledger_migration_keeps_every_row_both_ways(transactional_db):
    data = migration_data_write()
    history = migration_walk(back_to=[("ingest", "0004_ingest_warnings")])
    states = [s.state for s in history]
    back = states.index("back to ingest.0004_ingest_warnings")
    assert states[back - 1] == "back to ingest.0005_partitioned_ledger"
    assert "forward to ingest.0005_partitioned_ledger" in states[back:]
    # Back at 0004 the ledger is one plain table again, every event of every tenant in it.
    before_0005 = history[back]
    assert "ingest_idempotency" not in before_0005.tables
    assert len(before_0005.tables["ingest_event"][1]) == data.events
    report = history_assert_kept(history)
    _print_counts(report)
    assert sum(n for n, _ in report["ingest_event"].values()) == data.events
    assert sum(n for n, _ in report["ingest_idempotency"].values()) == data.events
    assert len(report["events_enriched"]) == len(data.tenants)
    assert len(report["ingest_deadletter"]) == len(data.tenants)


@pytest.mark.parametrize(
    "back_to",
    [
        ("ingest", "0005_partitioned_ledger"),
        ("tenants", "0003_webhooksource"),
        ("flags", "0001_initial"),
        ("reconcile", "0001_initial"),
    ],
    ids=lambda t: f"{t[0]}.{t[1]}",
)
def test_every_later_migration_keeps_every_row_both_ways(transactional_db, back_to):
    data = migration_data_write(tenants=2, per_tenant=3)
    report = history_assert_kept(migration_walk(back_to=[back_to]))
    _print_counts(report)
    assert sum(n for n, _ in report["ingest_event"].values()) == data.events


def test_a_move_that_lost_rows_stops_before_dropping_anything(db):
    """rows_moved_check: a target missing a tenant's row, or a check outside a scope, raises."""
    tenant = TenantFactory()
    with system_scope("test"), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE src (tenant_id uuid, n int)")
        cursor.execute("CREATE TEMP TABLE dst (tenant_id uuid, n int)")
        cursor.execute("INSERT INTO src VALUES (%s, 1), (%s, 2)", [tenant.id, tenant.id])
        cursor.execute("INSERT INTO dst VALUES (%s, 1)", [tenant.id])
        with pytest.raises(rls.MigrationDataLoss, match="rows differ per tenant"):
            rls.rows_moved_check(cursor, source="src", target="dst", columns="tenant_id, n")
        cursor.execute("INSERT INTO dst VALUES (%s, 2)", [tenant.id])
        moved = rls.rows_moved_check(cursor, source="src", target="dst", columns="tenant_id, n")
        assert moved == 2
    # The app role, no scope: the check refuses to vouch for what it cannot see.
    with (
        connection.cursor() as cursor,
        pytest.raises(rls.MigrationDataLoss, match="not in a system scope"),
    ):
        rls.rows_moved_check(cursor, source="src", target="dst", columns="tenant_id, n")
