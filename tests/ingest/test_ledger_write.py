"""The ledger write: prepared once per session where sessions keep it, else planned per call."""

from __future__ import annotations

from django.db import connection, transaction

from ingest.services import ledger_write
from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tests.factories import TenantFactory
from tests.helpers import encode, make_event


def _ingest(tenant, *keys: str) -> list[str]:
    body = encode({"events": [make_event(key) for key in keys]})
    return [
        r.status
        for r in events_ingest(tenant_id=tenant.id, key_id="k", items=parse_body(body).items)
    ]


def _prepared_here() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = %s",
            [ledger_write.PREPARED_NAME],
        )
        return cursor.fetchone()[0] == 1


def test_a_direct_session_prepares_the_write_once_and_it_answers_as_the_plain_one(
    transactional_db,
):
    tenant = TenantFactory()
    assert _ingest(tenant, "a", "b") == ["accepted", "accepted"]
    assert _prepared_here()
    # The generic plan serves every tenant: RLS reads the scope when it runs, not when planned.
    other = TenantFactory()
    assert _ingest(other, "a", "c") == ["accepted", "accepted"]
    assert _ingest(tenant, "a", "c") == ["duplicate", "accepted"]
    assert _ingest(other, "a", "b") == ["duplicate", "accepted"]


def test_a_session_that_lost_the_statement_prepares_it_again(transactional_db):
    tenant = TenantFactory()
    assert _ingest(tenant, "before") == ["accepted"]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what DISCARD ALL or a server-side reset does
    assert not _prepared_here()
    assert _ingest(tenant, "after", "before") == ["accepted", "duplicate"]
    assert _prepared_here()
    assert ledger_write._preparing["on"]


def test_transaction_pooling_never_prepares(transactional_db, monkeypatch):
    tenant = TenantFactory()
    connection.close()  # a new session: nothing prepared on it yet
    monkeypatch.setitem(connection.settings_dict, "POOL_MODE", "transaction")
    assert _ingest(tenant, "p-1", "p-2") == ["accepted", "accepted"]
    assert _ingest(tenant, "p-1") == ["duplicate"]
    assert not _prepared_here()


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_the_plan_made_on_an_empty_table_probes_the_primary_key_for_unclaimed_keys(
    transactional_db,
):
    """A generic plan is kept for the session: one made on an empty table must still probe by key.

    (The form it replaced got a sequential scan here, or a scan of every row of the tenant by
    primary key: 10 -> 45 ms per 100-event batch as the table grew.)
    """
    tenant = TenantFactory()
    assert _ingest(tenant, "first") == ["accepted"]  # prepared and planned on an empty table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            ledger_write._PREPARED_SCOPE_SQL.replace("%(tenant)s", "%s"), [str(tenant.id)]
        )
        cursor.execute(
            f"EXPLAIN (FORMAT JSON) EXECUTE {ledger_write.PREPARED_NAME} (%s, %s, %s)",
            [
                '[{"k": "x", "t": "t", "s": "s", "o": "2026-01-01T00:00:00Z", "p": {}, "f": "f"}]',
                str(tenant.id),
                "k",
            ],
        )
        (plan,) = cursor.fetchone()[0]
    scans = [
        node
        for node in _plan_nodes(plan["Plan"])
        if node.get("Relation Name") == "ingest_idempotency" and "Scan" in node["Node Type"]
    ]
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan
        assert "idempotency_key" in scan["Index Cond"], scan
