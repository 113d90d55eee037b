"""reconcile --json and --repair, the nightly look-back's partner: healing pending events."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest.models import EnrichedEvent, Event
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.helpers import noon, wait_for

RUN_KEYS = {
    "tenant",
    "day",
    "window_start",
    "window_end",
    "accepted",
    "enriched",
    "dead_lettered",
    "pending",
    "drift",
    "grade",
}


def _json(*args) -> dict:
    out = io.StringIO()
    call_command("reconcile", "--json", *args, stdout=out)
    return json.loads(out.getvalue())  # one object, nothing else on stdout


def test_json_prints_exactly_one_object_with_runs(db, tenant_factory, ledger, yesterday):
    ledger(tenant_factory("acme"), 200, enriched=196, dead=1, received_at=noon(yesterday))
    tenant_factory("zeta")
    doc = _json()
    assert set(doc) == {"runs"}
    acme, zeta = doc["runs"]
    assert set(acme) == RUN_KEYS
    assert acme == {
        "tenant": "acme",
        "day": yesterday.isoformat(),
        "window_start": f"{yesterday.isoformat()}T00:00:00+00:00",
        "window_end": f"{(yesterday + timedelta(days=1)).isoformat()}T00:00:00+00:00",
        "accepted": 200,
        "enriched": 196,
        "dead_lettered": 1,
        "pending": 3,
        "drift": pytest.approx(0.02),
        "grade": "CRITICAL",
    }
    assert (zeta["tenant"], zeta["accepted"], zeta["grade"]) == ("zeta", 0, "OK")


def _pending_with_backoff(tenant, events):
    """Make the events wait out a long retry backoff, as after failed enrichments."""
    with tenant_scope(tenant.id):
        Event.objects.filter(id__in=[e.id for e in events]).update(
            enrich_attempts=2, enrich_retry_at=timezone.now() + timedelta(hours=6)
        )


def _enriched_ids(tenant) -> set[int]:
    with tenant_scope(tenant.id):
        return set(EnrichedEvent.objects.filter(tenant=tenant).values_list("event_id", flat=True))


def test_repair_enqueues_enrichment_for_the_windows_pending_events_and_audits(
    transactional_db, celery_worker, tenant_factory, ledger, yesterday
):
    tenant = tenant_factory("acme")
    events = ledger(tenant, 6, enriched=2, dead=1, received_at=noon(yesterday))
    pending, dead = events[3:], events[2]
    _pending_with_backoff(tenant, pending)

    doc = _json("--repair", "--tenant", "acme", "--actor", "ops@example.com")

    assert doc["runs"][0]["pending"] == 3
    assert doc["repairs"] == [
        {
            "tenant": "acme",
            "day": yesterday.isoformat(),
            "window_start": doc["runs"][0]["window_start"],
            "window_end": doc["runs"][0]["window_end"],
            "pending": 3,
            "enqueued": True,
        }
    ]
    wait_for(
        lambda: {e.id for e in pending} <= _enriched_ids(tenant),
        what="the repaired events to be enriched by the woken drain",
    )
    assert dead.id not in _enriched_ids(tenant)  # dead letters are replay_dlq's, not repair's
    with system_scope("test"):
        [audit] = AuditLog.objects.filter(action="reconcile.repair")
    assert (audit.actor, audit.tenant_id, audit.target) == (
        "ops@example.com",
        tenant.id,
        f"acme {yesterday.isoformat()}",
    )
    assert audit.new == {"made_due": 3, "drain_enqueued": True}
    # Healed: a second reconcile finds nothing pending.
    assert _json("--tenant", "acme")["runs"][0]["pending"] == 0


def test_repair_in_the_table_output_says_what_it_did(db, tenant_factory, ledger, yesterday):
    tenant = tenant_factory("acme")
    _pending_with_backoff(tenant, ledger(tenant, 2, received_at=noon(yesterday)))
    out = io.StringIO()
    call_command("reconcile", "--repair", stdout=out)
    assert "repair acme " + yesterday.isoformat() + ": 2 pending event(s) made due" in (
        out.getvalue()
    )
    with tenant_scope(tenant.id):
        assert not Event.objects.filter(enrich_retry_at__isnull=False).exists()
