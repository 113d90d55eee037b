"""The ledger write function: answers as the statement did, keeps one safe plan per session."""

from __future__ import annotations

import re

from django.db import connection, transaction

from ingest.services import ledger_write
from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import encode, make_event


def _ingest(tenant, *keys: str) -> list[str]:
    body = encode({"events": [make_event(key) for key in keys]})
    return [
        r.status
        for r in events_ingest(tenant_id=tenant.id, key_id="k", items=parse_body(body).items)
    ]


def test_one_function_serves_every_tenant_and_answers_new_duplicate_per_tenant(transactional_db):
    # Its kept plan serves every tenant: RLS reads the scope when it runs, not when planned.
    tenant, other = TenantFactory(), TenantFactory()
    assert _ingest(tenant, "a", "b") == ["accepted", "accepted"]
    assert _ingest(other, "a", "c") == ["accepted", "accepted"]
    assert _ingest(tenant, "a", "c") == ["duplicate", "accepted"]
    assert _ingest(other, "a", "b", "c") == ["duplicate", "accepted", "duplicate"]


def test_the_function_runs_as_the_caller_under_row_level_security(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = %s",
            [ledger_write.FUNCTION_NAME],
        )
        security_definer, config = cursor.fetchone()
    assert security_definer is False  # a definer (the owner) would write past RLS
    assert "enable_seqscan=off" in config
    assert "plan_cache_mode=force_generic_plan" in config


def test_the_write_fires_no_trigger_per_row(db):
    """No foreign key, no trigger on the tables it writes: nothing is checked once per event.

    The ledger's deferred foreign key to the tenant ran a SELECT .. FOR KEY SHARE per event at
    commit, 13-14% of PostgreSQL's CPU for a 100-event batch (migration ingest 0009).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relname = 'ingest_idempotency' OR c.relname LIKE 'ingest_event%%'"
        )
        assert cursor.fetchall() == []


def test_inside_a_callers_transaction_the_callers_scope_is_back_after_the_write(db):
    tenant, other = TenantFactory(), TenantFactory()
    with tenant_scope(other.id), connection.cursor() as cursor:
        assert _ingest(tenant, "scoped") == ["accepted"]
        cursor.execute(
            "SELECT current_setting('app.tenant_id', true),"
            " current_setting('app.system_scope', true)"
        )
        assert cursor.fetchone() == (str(other.id), "")
    with system_scope("test"), connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id FROM ingest_event WHERE idempotency_key = 'scoped'")
        assert cursor.fetchall() == [(tenant.id,)]


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_the_plan_made_on_an_empty_table_probes_the_primary_key_for_unclaimed_keys(
    transactional_db,
):
    """A session keeps the plan made at its first call: made on an empty table, it must still
    probe by key. (The form it replaced got a sequential scan here, or a scan of every row of
    the tenant by primary key: 10 -> 45 ms per 100-event batch as the table grew.)

    PostgreSQL cannot EXPLAIN inside a function, so the function's own text and settings, read
    from pg_proc, are prepared and planned here the way PL/pgSQL plans them.
    """
    tenant = TenantFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingest_idempotency")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT prosrc, proconfig FROM pg_proc WHERE proname = %s",
            [ledger_write.FUNCTION_NAME],
        )
        source, config = cursor.fetchone()
    query = re.search(r"RETURN QUERY(.*?);\s*PERFORM", source, re.DOTALL).group(1)
    for name, number in (("p_rows", 1), ("p_tenant", 2), ("p_key_id", 3)):
        query = re.sub(rf"\b{name}\b", f"${number}", query)
    rows = '[{"k": "x", "t": "t", "s": "s", "o": "2026-01-01T00:00:00Z", "p": {}, "f": "f"}]'
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in config:
            name, _, value = setting.partition("=")
            if name != "search_path":
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.id)])
        cursor.execute(f"PREPARE ledger_write_plan (text, uuid, text) AS {query}")
        try:
            cursor.execute(
                "EXPLAIN (FORMAT JSON) EXECUTE ledger_write_plan (%s, %s, %s)",
                [rows, str(tenant.id), "k"],
            )
            (plan,) = cursor.fetchone()[0]
        finally:
            cursor.execute("DEALLOCATE ledger_write_plan")
        transaction.set_rollback(True)
    scans = [
        node
        for node in _plan_nodes(plan["Plan"])
        if node.get("Relation Name") == "ingest_idempotency" and "Scan" in node["Node Type"]
    ]
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan
        assert "idempotency_key" in scan["Index Cond"], scan
