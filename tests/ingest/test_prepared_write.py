"""On a direct connection the ledger write runs as prepared statements (parsed, planned once)."""

from __future__ import annotations

from django.db import connection

from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tests.factories import TenantFactory
from tests.helpers import encode, make_event


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_write_is_prepared_once_per_connection_and_stays_exactly_once(transactional_db):
    tenant = TenantFactory()
    connection.close()  # a fresh session: nothing prepared yet
    for n in range(3):
        items = parse_body(encode(make_event(f"p-{n}"))).items
        [result] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
        assert result.status == "accepted"
    items = parse_body(encode(make_event("p-0"))).items
    [again] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    assert again.status == "duplicate"
    statements = _prepared()
    assert sum("INSERT INTO ingest_idempotency" in s for s in statements) == 1, statements
    assert sum("FROM ingest_idempotency" in s and "ANY($2" in s for s in statements) == 1


def test_behind_a_transaction_pooler_nothing_is_prepared(transactional_db, settings):
    tenant = TenantFactory()
    connection.close()
    connection.settings_dict["POOL_MODE"] = "transaction"
    try:
        items = parse_body(encode(make_event("pooled"))).items
        [result] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
        assert result.status == "accepted"
        assert not [s for s in _prepared() if "ingest_idempotency" in s]
    finally:
        connection.settings_dict["POOL_MODE"] = "session"
