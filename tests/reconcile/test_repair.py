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
from tests.factories import TenantFactory
from tests.helpers import noon, wait_until

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


def test_json_prints_exactly_one_object_with_runs(db, ledger, yesterday):
    ledger(TenantFactory(slug="acme"), 200, enriched=196, dead=1, received_at=noon(yesterday))
    TenantFactory(slug="zeta")
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


def test_repair_reenriches_the_windows_pending_events_now_and_audits(db, ledger, yesterday):
    tenant = TenantFactory(slug="acme")
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
            "lost": 0,
            "reenriched": 3,
            "failed": 0,
            "enqueued": False,  # nothing left for the drain
        }
    ]
    assert {e.id for e in pending} <= _enriched_ids(tenant)  # a retry backoff is cut short
    assert dead.id not in _enriched_ids(tenant)  # dead letters are replay_dlq's, not repair's
    with system_scope("test"):
        [audit] = AuditLog.objects.filter(action="reconcile.repair")
    assert (audit.actor, audit.tenant_id, audit.target) == (
        "ops@example.com",
        tenant.id,
        f"acme {yesterday.isoformat()}",
    )
    assert audit.old == {"pending": 3, "lost": 0}
    assert audit.new == {"reenriched": 3, "failed": 0, "drain_enqueued": False}
    # Healed: a second reconcile finds nothing pending.
    assert _json("--tenant", "acme")["runs"][0]["pending"] == 0


def test_repair_leaves_an_event_that_fails_again_due_and_wakes_the_drain(
    transactional_db, celery_worker, ledger, yesterday, settings
):
    settings.CODEX_ENRICH_FAIL_TYPES = ["sale.broken"]
    tenant = TenantFactory(slug="acme")
    good, broken = ledger(tenant, 2, received_at=noon(yesterday))
    with tenant_scope(tenant.id):
        Event.objects.filter(id=broken.id).update(type="sale.broken")
    _pending_with_backoff(tenant, [good, broken])

    [repair] = _json("--repair", "--tenant", "acme")["repairs"]

    assert (repair["pending"], repair["reenriched"], repair["failed"], repair["enqueued"]) == (
        2,
        1,
        1,
        True,
    )
    assert _enriched_ids(tenant) == {good.id}

    def attempts() -> int:
        with tenant_scope(tenant.id):
            return Event.objects.get(id=broken.id).enrich_attempts

    # Made due (its backoff cut short) and handed to the drain, which counts its next attempt.
    wait_until(lambda: attempts() == 3, message="the woken drain to retry the failing event")


def test_repair_in_the_table_output_says_what_it_did(db, ledger, yesterday):
    tenant = TenantFactory(slug="acme")
    zeta = TenantFactory(slug="zeta")
    _pending_with_backoff(tenant, ledger(tenant, 2, received_at=noon(yesterday)))
    ledger(zeta, 1, enriched=1, received_at=noon(yesterday))
    out = io.StringIO()
    call_command("reconcile", "--repair", stdout=out)
    text = out.getvalue()
    assert f"repair acme {yesterday.isoformat()}: 2 pending event(s) re-enriched\n" in text
    assert f"repair zeta {yesterday.isoformat()}: nothing pending\n" in text
    with tenant_scope(tenant.id):
        assert not Event.objects.filter(enriched_at__isnull=True).exists()
