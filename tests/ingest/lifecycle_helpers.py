"""Test helpers for the data lifecycle: events at chosen receipt times, with their derived rows."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from ingest.models import Event
from tenants.scope import system_scope
from tests.factories import DeadLetterFactory, EnrichedEventFactory, EventFactory


def put_event(
    tenant,
    key: str,
    received_at: datetime,
    *,
    subject: str | None = None,
    enriched: bool = False,
    dead_letter: bool | str = False,
) -> Event:
    """A ledger row (with its idempotency key), optionally enriched or dead-lettered.

    dead_letter: True for an open entry, "resolved" for one resolved at received_at.
    """
    event = EventFactory(
        tenant=tenant,
        idempotency_key=key,
        occurred_at=received_at,
        received_at=received_at,
        subject_id=subject,
        payload={"amount": "1.00", "currency": "EUR"},
        enriched_at=received_at if enriched else None,
    )
    if enriched:
        EnrichedEventFactory(event=event)
    if dead_letter:
        DeadLetterFactory(
            event=event,
            error_class="E",
            first_failed_at=received_at,
            last_failed_at=received_at,
            resolved_at=received_at if dead_letter == "resolved" else None,
        )
    return event


def counts(tenant) -> dict[str, int]:
    """Rows of a tenant per lifecycle table (seen as the owner would: system scope)."""
    out = {}
    with system_scope("test-check"), connection.cursor() as cursor:
        for table in ("ingest_event", "events_enriched", "ingest_deadletter", "ingest_idempotency"):
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                [str(tenant.id)],
            )
            out[table] = cursor.fetchone()[0]
    return out
