"""reconcile --repair heals what reconcile reports: events whose events_enriched row is gone too.

The ledger marks an event enriched (ingest_event.enriched_at) when enrichment writes its row; if
that row is later deleted or lost, reconcile counts the event as pending again, whatever the
marker says, and --repair must re-enrich it.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from ingest.models import EnrichedEvent, Event
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import noon

# What enrichment computes from the ledger row (enriched_at is when it ran, id a new row's).
CONTENT = (
    "event_id",
    "type",
    "source",
    "occurred_at",
    "occurred_date",
    "received_at",
    "amount_minor",
    "currency",
    "lag_ms",
)


def _json(*args) -> dict:
    out = io.StringIO()
    call_command("reconcile", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def _content(tenant) -> dict[int, tuple]:
    with tenant_scope(tenant.id):
        rows = EnrichedEvent.objects.filter(tenant=tenant).values_list(*CONTENT)
        return {row[0]: row for row in rows}


def _lose_enriched_rows(tenant, events) -> None:
    """Delete the events' events_enriched rows; the ledger still says they were enriched."""
    ids = [e.id for e in events]
    with tenant_scope(tenant.id):
        assert EnrichedEvent.objects.filter(tenant=tenant, event_id__in=ids).delete()[0] == 3
        assert Event.objects.filter(id__in=ids, enriched_at__isnull=False).count() == 3


def _repair_audits() -> list[AuditLog]:
    with system_scope("test"):
        return list(AuditLog.objects.filter(action="reconcile.repair").order_by("id"))


def test_repair_restores_lost_enriched_rows_with_their_content_once_and_audits(
    db, ledger, yesterday
):
    tenant = TenantFactory(slug="acme")
    events = ledger(tenant, 10, enriched=10, received_at=noon(yesterday))
    before = _content(tenant)
    lost = events[2:5]
    _lose_enriched_rows(tenant, lost)

    [found] = _json("--tenant", "acme")["runs"]
    assert (found["accepted"], found["enriched"], found["pending"]) == (10, 7, 3)

    doc = _json("--repair", "--tenant", "acme", "--actor", "ops@example.com")

    assert doc["runs"][0]["pending"] == 3  # what this run found, before repairing it
    assert _content(tenant) == before  # the 3 rows are back, computed from the ledger as before
    [after] = _json("--tenant", "acme")["runs"]
    assert (after["accepted"], after["enriched"], after["pending"], after["drift"]) == (
        10,
        10,
        0,
        0.0,
    )
    [repair] = doc["repairs"]
    assert (repair["pending"], repair["lost"], repair["reenriched"], repair["failed"]) == (
        3,
        3,
        3,
        0,
    )
    [audit] = _repair_audits()
    assert (audit.actor, audit.tenant_id, audit.target) == (
        "ops@example.com",
        tenant.id,
        f"acme {yesterday.isoformat()}",
    )
    assert audit.old == {"pending": 3, "lost": 3}
    assert audit.new == {"reenriched": 3, "failed": 0, "drain_enqueued": False}

    # Idempotent: a second repair finds nothing, changes nothing and writes no audit row.
    with tenant_scope(tenant.id):
        marks = dict(Event.objects.values_list("id", "enriched_at"))
        enriched_ats = dict(EnrichedEvent.objects.values_list("event_id", "enriched_at"))
    [again] = _json("--repair", "--tenant", "acme")["repairs"]
    assert (again["pending"], again["lost"], again["reenriched"], again["failed"]) == (0, 0, 0, 0)
    with tenant_scope(tenant.id):
        assert dict(Event.objects.values_list("id", "enriched_at")) == marks
        assert dict(EnrichedEvent.objects.values_list("event_id", "enriched_at")) == enriched_ats
    assert len(_repair_audits()) == 1


def test_repair_heals_lost_and_never_enriched_events_and_leaves_dead_letters(db, ledger, yesterday):
    tenant = TenantFactory(slug="acme")
    # 6 enriched (3 of them lose their row), 1 dead-lettered, 1 never enriched
    events = ledger(tenant, 8, enriched=6, dead=1, received_at=noon(yesterday))
    _lose_enriched_rows(tenant, events[:3])
    dead, never = events[6], events[7]

    out = io.StringIO()
    call_command("reconcile", "--repair", "--tenant", "acme", stdout=out)

    text = out.getvalue()
    assert (
        f"repair acme {yesterday.isoformat()}: 4 pending event(s) re-enriched "
        "(3 marked enriched in the ledger but missing from events_enriched)"
    ) in text
    assert "health: OK" not in text  # the open dead letter still warns
    enriched = set(_content(tenant))
    assert {e.id for e in events[:6]} | {never.id} == enriched
    assert dead.id not in enriched  # dead letters are replay_dlq's, not repair's
    [run] = _json("--tenant", "acme")["runs"]
    assert (run["enriched"], run["dead_lettered"], run["pending"]) == (7, 1, 0)


@pytest.mark.parametrize("actor", ["ops@example.com"])
def test_repair_records_the_healed_run_so_health_sees_it(db, ledger, yesterday, actor):
    from reconcile.models import ReconcileRun

    tenant = TenantFactory(slug="acme")
    events = ledger(tenant, 10, enriched=10, received_at=noon(yesterday))
    _lose_enriched_rows(tenant, events[:3])

    out = io.StringIO()
    call_command("reconcile", "--repair", "--actor", actor, stdout=out)

    with tenant_scope(tenant.id):
        run = ReconcileRun.objects.get(tenant=tenant, day=yesterday)
    assert (run.accepted, run.enriched, run.drift) == (10, 10, 0.0)
    assert out.getvalue().rstrip().splitlines()[-1].startswith("health: OK")
