"""The ledger write: prepared once per session where sessions keep it, else planned per call."""

from __future__ import annotations

from django.db import connection

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
