"""Rows written before the partitioning migration survive it (backwards, then forwards)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from codex.db import roles
from ingest.models import DeadLetter, EnrichedEvent, Event, IdempotencyKey
from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import encode, make_event

OLD_EVENT = """
INSERT INTO ingest_event (tenant_id, idempotency_key, type, source, occurred_at, received_at,
    payload, fingerprint, key_id, enrich_attempts)
VALUES (%s, %s, 'sale.completed', 'pos', %s, %s, '{"amount": "1.00"}', %s, 'k', 0)
RETURNING id
"""


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_rows_from_before_the_partitioned_ledger_survive_the_migration(transactional_db):
    tenant = TenantFactory()
    tid = str(tenant.id)
    old_day = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    items = parse_body(encode(make_event("kept-key"))).items
    fingerprint = items[0].event.fingerprint
    with roles.owner_mode():
        _migrate([("ingest", "0004_ingest_warnings")])
        # The owner is no superuser: forced RLS applies to it, so it writes in a named scope.
        with system_scope("test-old-rows"), connection.cursor() as cursor:
            cursor.execute(OLD_EVENT, [tid, "old-march", old_day, old_day, "f" * 64])
            march_id = cursor.fetchone()[0]
            cursor.execute(OLD_EVENT, [tid, "kept-key", old_day, datetime.now(UTC), fingerprint])
            recent_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO events_enriched (tenant_id, event_id, type, source, occurred_at,"
                " occurred_date, received_at, currency, lag_ms, enriched_at) VALUES"
                " (%s, %s, 'sale.completed', 'pos', %s, %s, %s, 'EUR', 0, now())",
                [tid, march_id, old_day, old_day.date(), old_day],
            )
            cursor.execute(
                "INSERT INTO ingest_deadletter (tenant_id, event_id, stage, error_class,"
                " error_message, attempts, first_failed_at, last_failed_at) VALUES"
                " (%s, %s, 'enrich', 'E', '', 1, now(), now())",
                [tid, recent_id],
            )
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        roles.grant_app_role()

    with tenant_scope(tenant.id):
        events = dict(Event.objects.filter(tenant_id=tid).values_list("idempotency_key", "id"))
        assert events == {"old-march": march_id, "kept-key": recent_id}
        claims = {
            c.idempotency_key: (c.event_id, c.fingerprint)
            for c in IdempotencyKey.objects.filter(tenant_id=tid)
        }
        assert claims == {"old-march": (march_id, "f" * 64), "kept-key": (recent_id, fingerprint)}
        assert list(EnrichedEvent.objects.values_list("event_id", flat=True)) == [march_id]
        assert list(DeadLetter.objects.values_list("event_id", flat=True)) == [recent_id]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tableoid::regclass::text FROM ingest_event WHERE id = %s", [march_id]
            )
            assert cursor.fetchone()[0] == "ingest_event_p202503"
    # The exactly-once guarantee carries over: the old key is a duplicate, a new one gets a
    # fresh id after the old ones.
    [dup] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    assert (dup.status, dup.id) == ("duplicate", recent_id)
    [new] = events_ingest(
        tenant_id=tenant.id, key_id="k", items=parse_body(encode(make_event("fresh"))).items
    )
    assert new.status == "accepted"
    assert new.id > recent_id
