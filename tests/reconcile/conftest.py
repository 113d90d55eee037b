"""Fixtures for the reconcile tests: ledger rows received on a given day, partly enriched."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest


@pytest.fixture
def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


@pytest.fixture
def ledger():
    """ledger(tenant, accepted, enriched=0, dead=0, received_at=...) -> the Event rows.

    Events come from tests.factories.EventFactory, written in one INSERT (no enqueue); `enriched`
    of them go through ingest's enrichment service, the next `dead` are dead-lettered by it.
    """
    from ingest.models import Event
    from ingest.services.deadletters import deadletter_record
    from ingest.services.enrich import events_enrich
    from tenants.scope import tenant_scope
    from tests.factories import EventFactory

    def make(tenant, accepted, *, enriched=0, dead=0, received_at):
        with tenant_scope(tenant.id):
            events = Event.objects.bulk_create(
                EventFactory.build_batch(
                    accepted,
                    tenant=tenant,
                    occurred_at=received_at - timedelta(seconds=5),
                    received_at=received_at,
                    payload={"amount": "1.00", "currency": "EUR"},
                )
            )
        ids = [e.id for e in events]
        if enriched:
            outcome = events_enrich(tenant_id=tenant.id, event_ids=ids[:enriched])
            assert len(outcome.enriched) == enriched
        if dead:
            failures = {i: RuntimeError("boom") for i in ids[enriched : enriched + dead]}
            deadletter_record(
                tenant_id=tenant.id, failures=failures, attempts=4, first_failed_at=None
            )
        return events

    return make


@pytest.fixture
def locked_run(transactional_db):
    """lock(tenant_id): hold that tenant's reconcile_run rows FOR UPDATE from another connection."""
    from django.db import connection

    from tests.dbutil import owner_connect

    other = owner_connect()

    def lock(tenant_id) -> None:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM reconcile_run WHERE tenant_id = %s FOR UPDATE", [tenant_id]
            )
            assert cursor.fetchall()

    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    try:
        yield lock
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
