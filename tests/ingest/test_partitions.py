"""The partitioned ledger: months created ahead, a default partition, RLS on every partition."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from ingest import partitions
from ingest.models import Event
from ingest.services.accept import events_ingest
from ingest.validation import parse_body
from tenants.scope import system_scope, tenant_scope
from tests.factories import EnrichedEventFactory, EventFactory, TenantFactory
from tests.helpers import assert_restricted_role, encode, make_event, restricted_cursor


def _partition_of(table: str, tenant_id, event_id) -> str:
    with system_scope("test"), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {table} WHERE tenant_id = %s AND "
            f"{'id' if table == 'ingest_event' else 'event_id'} = %s",
            [str(tenant_id), event_id],
        )
        return cursor.fetchone()[0]


def _event(tenant, key: str, received_at: datetime) -> Event:
    return EventFactory(
        tenant=tenant, idempotency_key=key, occurred_at=received_at, received_at=received_at
    )


def test_partitions_exist_for_this_month_and_three_ahead_plus_a_default(db):
    this_month = partitions.month_floor(datetime.now(UTC))
    for table in partitions.PARTITIONED_TABLES:
        months = [m for _, m in partitions.month_partitions(table=table)]
        for ahead in range(partitions.MONTHS_AHEAD + 1):
            assert partitions.add_months(this_month, ahead) in months, (table, ahead)
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", [partitions.default_name(table)])
            assert cursor.fetchone()[0] is not None


def test_partitions_ensure_is_scheduled_daily_in_the_one_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["ingest-partitions-ensure"]
    assert entry["task"] == "ingest.tasks.partitions_ensure"
    assert entry["options"]["expires"] > 0


def test_ingest_writes_this_months_partition_and_the_idempotency_table(db):
    tenant = TenantFactory()
    items = parse_body(encode(make_event("p-1"))).items
    [result] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    assert result.status == "accepted"
    month = partitions.month_floor(datetime.now(UTC))
    assert _partition_of("ingest_event", tenant.id, result.id) == partitions.partition_name(
        "ingest_event", month
    )
    with tenant_scope(tenant.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, fingerprint FROM ingest_idempotency WHERE tenant_id = %s "
            "AND idempotency_key = 'p-1'",
            [str(tenant.id)],
        )
        event_id, fingerprint = cursor.fetchone()
    assert event_id == result.id
    assert fingerprint == items[0].event.fingerprint


def test_an_insert_past_the_last_month_lands_in_the_default_then_moves_to_its_month(db):
    """Across a month boundary with no partition for the new month: nothing fails or is lost."""
    tenant = TenantFactory()
    december = date(2031, 12, 1)
    partitions.partitions_ensure(today=december, since=december, months_ahead=0)
    last_of_december = datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    new_year = datetime(2032, 1, 1, tzinfo=UTC)
    before = _event(tenant, "before-midnight", last_of_december)
    after = _event(tenant, "after-midnight", new_year)
    assert _partition_of("ingest_event", tenant.id, before.id) == "ingest_event_p203112"
    assert _partition_of("ingest_event", tenant.id, after.id) == "ingest_event_default"
    EnrichedEventFactory(event=after)

    created = partitions.partitions_ensure(
        today=date(2032, 1, 15), since=date(2032, 1, 1), months_ahead=0
    ).created
    assert created == ["ingest_event_p203201", "events_enriched_p203201"]
    assert _partition_of("ingest_event", tenant.id, after.id) == "ingest_event_p203201"
    assert _partition_of("events_enriched", tenant.id, after.id) == "events_enriched_p203201"
    with tenant_scope(tenant.id):
        since = datetime(2031, 12, 1, tzinfo=UTC)
        rows = Event.objects.filter(tenant_id=tenant.id, received_at__gte=since)
        keys = set(rows.values_list("idempotency_key", flat=True))
    assert keys == {"before-midnight", "after-midnight"}
    # The moved-into partition is protected like the others.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s",
            ["ingest_event_p203201"],
        )
        assert cursor.fetchone() == (True, True)
    # A second run creates nothing.
    again = partitions.partitions_ensure(
        today=date(2032, 1, 15), since=date(2032, 1, 1), months_ahead=0
    )
    assert again.created == []


def test_the_app_role_reaches_a_partition_directly_only_through_its_policy(db):
    with restricted_cursor() as app_cursor:
        alpha, bravo = TenantFactory(slug="alpha"), TenantFactory(slug="bravo")
        now = datetime.now(UTC)
        _event(alpha, "a-1", now)
        _event(bravo, "b-1", now)
        partition = partitions.partition_name("ingest_event", partitions.month_floor(now))
        cursor = app_cursor
        assert_restricted_role(cursor)
        # No scope: the partition shows nothing, even though it holds two rows.
        with transaction.atomic():
            cursor.execute(f"SELECT count(*) FROM {partition}")
            assert cursor.fetchone()[0] == 0
        with tenant_scope(alpha.id):
            cursor.execute(f"SELECT idempotency_key FROM {partition}")
            assert [r[0] for r in cursor.fetchall()] == ["a-1"]
            cursor.execute(
                f"UPDATE {partition} SET type = 'x' WHERE tenant_id = %s", [str(bravo.id)]
            )
            assert cursor.rowcount == 0
            cursor.execute(f"DELETE FROM {partition} WHERE tenant_id = %s", [str(bravo.id)])
            assert cursor.rowcount == 0
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {partition} (tenant_id, idempotency_key, type, source, "
                    "occurred_at, received_at, payload, fingerprint, key_id) "
                    "VALUES (%s, 'forged', 't', 's', now(), now(), '{}', '', '')",
                    [str(bravo.id)],
                )
            for default in ("ingest_event_default", "events_enriched_default"):
                cursor.execute(
                    f"SELECT count(*) FROM {default} WHERE tenant_id = %s", [str(bravo.id)]
                )
                assert cursor.fetchone()[0] == 0
        with system_scope("test"):
            assert Event.objects.filter(tenant_id=bravo.id, type="sale.completed").count() == 1


def test_the_app_role_cannot_create_or_drop_partitions(db):
    with restricted_cursor() as app_cursor:
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            app_cursor.execute(
                "CREATE TABLE zz_sneaky PARTITION OF ingest_event FOR VALUES FROM "
                "('2040-01-01') TO ('2040-02-01')"
            )
        month = partitions.month_floor(datetime.now(UTC) + timedelta(days=40))
        with pytest.raises(DatabaseError, match="must be owner"), transaction.atomic():
            app_cursor.execute(f"DROP TABLE {partitions.partition_name('ingest_event', month)}")


def test_the_beat_task_recreates_a_missing_month_as_the_owner(transactional_db):
    from ingest import tasks
    from tests.dbutil import owner_connect

    month = partitions.add_months(partitions.month_floor(datetime.now(UTC)), 3)
    name = partitions.partition_name("ingest_event", month)
    with owner_connect(autocommit=True) as owner:
        owner.execute(f"DROP TABLE {name}")
    created = tasks.partitions_ensure()
    assert created == [name]
    with owner_connect(autocommit=True) as owner:
        rls, forced = owner.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s", [name]
        ).fetchone()
        granted = owner.execute(
            "SELECT has_table_privilege(%s, %s, 'INSERT')", [settings.CODEX_DB_APP_ROLE, name]
        ).fetchone()[0]
    assert (rls, forced, granted) == (True, True, True)


def test_one_drain_batch_spanning_months_marks_every_event_in_its_own_partition(db):
    """The drain's UPDATEs are bounded by the batch's received_at range: every month in it."""
    from ingest.services.enrich import events_drain

    settings.CODEX_ENRICH_FAIL_TYPES = {"fault.enrich"}
    tenant = TenantFactory()
    partitions.partitions_ensure(today=date(2031, 10, 1), since=date(2031, 10, 1), months_ahead=1)
    october = _event(tenant, "october", datetime(2031, 10, 31, 23, 0, tzinfo=UTC))
    november = _event(tenant, "november", datetime(2031, 11, 1, 1, 0, tzinfo=UTC))
    later = _event(tenant, "default", datetime(2032, 6, 1, tzinfo=UTC))  # no month: the default
    broken = EventFactory(
        tenant=tenant,
        idempotency_key="broken",
        type="fault.enrich",
        received_at=datetime(2031, 11, 2, tzinfo=UTC),
    )
    outcome = events_drain(tenant_id=tenant.id)
    assert sorted(outcome.enriched) == sorted([october.id, november.id, later.id])
    assert list(outcome.failed) == [broken.id]
    with tenant_scope(tenant.id):
        state = {
            e.idempotency_key: (e.enriched_at is not None, e.enrich_attempts)
            for e in Event.objects.filter(tenant_id=tenant.id)
        }
    assert state == {
        "october": (True, 0),
        "november": (True, 0),
        "default": (True, 0),
        "broken": (False, 1),
    }
