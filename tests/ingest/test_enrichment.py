"""Enrichment by a real Celery worker, retry-then-DLQ, replay (command and admin), sweeper."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from flags.selectors import effective_flags
from ingest import selectors, tasks
from ingest.models import DeadLetter, EnrichedEvent, Event
from ingest.services.deadletters import deadletter_record
from ingest.services.enrich import events_enrich
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.factories import EventFactory, TenantFactory
from tests.helpers import make_event, wait_until


def _enriched(tenant, event_id=None):
    with tenant_scope(tenant.id):
        qs = EnrichedEvent.objects.filter(tenant=tenant)
        if event_id is not None:
            qs = qs.filter(event_id=event_id)
        return list(qs)


def _dead_letters(tenant):
    with tenant_scope(tenant.id):
        return list(DeadLetter.objects.filter(tenant=tenant).order_by("id"))


def _audit(action="dlq.replay"):
    with system_scope("test"):
        return list(AuditLog.objects.filter(action=action).order_by("id"))


def _make_events(tenant, *docs, received_ago=timedelta(0)):
    """Ledger rows written without an enqueue (as if Redis had lost it)."""
    received_at = timezone.now() - received_ago
    return [EventFactory.from_doc(tenant, doc, received_at=received_at) for doc in docs]


def test_accepted_event_is_enriched_by_a_real_worker(celery_worker, post_signed, signed):
    tenant = signed.tenant
    event_id = post_signed(
        make_event(
            "enrich-1",
            occurred_at="2026-01-15T23:30:00-02:00",  # next day in UTC
            payload={"amount": "12.34", "currency": "eur"},
        )
    ).json()["id"]
    [row] = wait_until(lambda: _enriched(tenant, event_id), message="events_enriched row")
    assert (row.type, row.source) == ("sale.completed", "pos")
    assert row.occurred_date == date(2026, 1, 16)
    assert (row.amount_minor, row.currency) == (1234, "EUR")
    with tenant_scope(tenant.id):
        event = Event.objects.get(id=event_id)
    assert row.lag_ms == int((event.received_at - event.occurred_at).total_seconds() * 1000)
    assert event.enriched_at is not None
    # Running it again changes nothing.
    again = events_enrich(tenant_id=tenant.id, event_ids=[event_id])
    assert (again.enriched, again.skipped, again.failed) == ([], [event_id], {})
    assert len(_enriched(tenant)) == 1


def test_a_batch_is_enriched_by_one_task(celery_worker, post_signed, signed):
    tenant = signed.tenant
    docs = [
        make_event(f"batch-{i}", payload={"amount_minor": i, "currency": "JPY"}) for i in range(5)
    ]
    assert post_signed({"events": docs}).json()["accepted"] == 5
    rows = wait_until(lambda: len(_enriched(tenant)) == 5 and _enriched(tenant), message="5 rows")
    assert sorted(r.amount_minor for r in rows) == [0, 1, 2, 3, 4]


def test_failing_enrichment_retries_then_lands_in_the_dlq_and_replay_resolves_it(
    celery_worker, post_signed, signed, settings
):
    tenant = signed.tenant
    settings.CODEX_ENRICH_FAIL_TYPES = {"fault.enrich"}
    settings.CODEX_ENRICH_RETRY_BASE_S = 0.05
    body = {"events": [make_event("good"), make_event("bad", type="fault.enrich")]}
    results = post_signed(body).json()["results"]
    good_id, bad_id = results[0]["id"], results[1]["id"]
    wait_until(lambda: _enriched(tenant, good_id), message="the good event enriched")
    [entry] = wait_until(lambda: _dead_letters(tenant), message="a dead-letter entry")
    retry_cap = int(effective_flags(tenant_id=tenant.id)["retryCap"])
    assert entry.event_id == bad_id
    assert entry.stage == "enrich"
    assert entry.attempts == retry_cap + 1
    assert entry.error_class.endswith("EnrichmentFault")
    assert "fault.enrich" in entry.error_message
    assert entry.first_failed_at <= entry.last_failed_at
    assert entry.resolved_at is None
    assert _enriched(tenant, bad_id) == []

    # Still failing: replay leaves it open, counts the attempt, and audits.
    with pytest.raises(CommandError, match="failed again; they stay open"):
        call_command("replay_dlq", "--tenant", tenant.slug)
    [entry] = _dead_letters(tenant)
    assert entry.resolved_at is None
    assert entry.attempts == retry_cap + 2

    # Fixed: replay enriches and resolves; every replay wrote an audit row.
    settings.CODEX_ENRICH_FAIL_TYPES = set()
    call_command("replay_dlq", "--id", str(entry.id))
    [entry] = _dead_letters(tenant)
    assert entry.resolved_at is not None
    assert len(_enriched(tenant, bad_id)) == 1
    audits = _audit()
    assert [a.new["outcome"] for a in audits] == ["failed", "resolved"]
    assert all(a.tenant_id == tenant.id and a.actor.startswith("cli:") for a in audits)
    assert audits[1].target == f"deadletter:{entry.id} event:{bad_id}"


def test_sweeper_wakes_the_drain_of_events_whose_wake_up_was_lost(celery_worker, signed):
    tenant = signed.tenant
    lost, fresh = _make_events(
        tenant, make_event("lost"), make_event("fresh"), received_ago=timedelta(minutes=3)
    )
    with tenant_scope(tenant.id):
        Event.objects.filter(id=fresh.id).update(received_at=timezone.now())
    # Only the event older than 2 minutes counts as overdue; the drain it wakes takes the tenant's
    # whole due backlog, the fresh event too.
    assert selectors.events_unenriched_by_tenant() == {str(tenant.id): 1}
    assert tasks.sweep_unenriched.apply().get() == 1
    wait_until(lambda: _enriched(tenant, lost.id), message="the swept event enriched")
    wait_until(
        lambda: _enriched(tenant, fresh.id), message="the fresh event enriched by the same drain"
    )
    assert tasks.sweep_unenriched.apply().get() == 0


@pytest.mark.django_db
def test_sweeper_skips_dead_lettered_and_enriched_events(signed):
    tenant = signed.tenant
    dead, done = _make_events(
        tenant, make_event("dead"), make_event("done"), received_ago=timedelta(minutes=5)
    )
    deadletter_record(
        tenant_id=tenant.id, failures={dead.id: ValueError("x")}, attempts=4, first_failed_at=None
    )
    events_enrich(tenant_id=tenant.id, event_ids=[done.id])
    assert selectors.events_unenriched_by_tenant() == {}


@pytest.mark.django_db
def test_replay_dlq_requires_a_selection_and_known_tenant(signed):
    with pytest.raises(CommandError, match="--tenant"):
        call_command("replay_dlq")
    with pytest.raises(CommandError, match="no tenant"):
        call_command("replay_dlq", "--tenant", "no-such-tenant")
    with pytest.raises(CommandError, match="--all"):
        call_command("replay_dlq", "--all", "--tenant", signed.tenant.slug)


@pytest.mark.django_db
def test_replay_dlq_all_replays_every_tenant_and_audits_each(db):
    a, b = TenantFactory(), TenantFactory()
    for tenant in (a, b):
        [event] = _make_events(tenant, make_event("x"))
        deadletter_record(
            tenant_id=tenant.id,
            failures={event.id: ValueError("x")},
            attempts=4,
            first_failed_at=None,
        )
    call_command("replay_dlq", "--all")
    assert all(e.resolved_at for t in (a, b) for e in _dead_letters(t))
    assert {a_.tenant_id for a_ in _audit()} == {a.id, b.id}


@pytest.mark.django_db
def test_admin_replay_action_resolves_and_audits_with_the_user(admin_client, admin_user, signed):
    tenant = signed.tenant
    [event] = _make_events(tenant, make_event("adm"))
    deadletter_record(
        tenant_id=tenant.id, failures={event.id: ValueError("x")}, attempts=4, first_failed_at=None
    )
    [entry] = _dead_letters(tenant)
    changelist = admin_client.get("/admin/ingest/deadletter/")
    assert changelist.status_code == 200
    assert str(event.id).encode() in changelist.content
    response = admin_client.post(
        "/admin/ingest/deadletter/",
        {"action": "replay", "_selected_action": [entry.id]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"1 resolved" in response.content
    [entry] = _dead_letters(tenant)
    assert entry.resolved_at is not None
    [audit] = _audit()
    assert audit.actor == admin_user.username
    assert audit.actor_user_id == admin_user.id
    assert audit.old == {"resolved_at": None, "attempts": 4}


@pytest.mark.django_db
def test_admin_lists_events_and_enriched_rows(admin_client, signed):
    tenant = signed.tenant
    [event] = _make_events(tenant, make_event("listed"))
    events_enrich(tenant_id=tenant.id, event_ids=[event.id])
    assert b"listed" in admin_client.get("/admin/ingest/event/").content
    assert admin_client.get("/admin/ingest/enrichedevent/").status_code == 200


@pytest.mark.django_db
def test_enrichment_reads_amounts_in_minor_units(signed):
    tenant = signed.tenant
    cases = [
        ({"amount": 12.5, "currency": "USD"}, 1250, "USD"),
        ({"amount": "1000", "currency": "JPY"}, 1000, "JPY"),
        ({"amount": "1.234", "currency": "KWD"}, 1234, "KWD"),
        ({"amount_minor": 99}, 99, ""),
        ({"amount": "abc", "currency": "EUR"}, None, "EUR"),
        ({"currency": "euro"}, None, ""),
        ({}, None, ""),
    ]
    events = _make_events(tenant, *[make_event(payload=p) for p, _, _ in cases])
    events_enrich(tenant_id=tenant.id, event_ids=[e.id for e in events])
    by_event = {r.event_id: r for r in _enriched(tenant)}
    for event, (_, minor, currency) in zip(events, cases, strict=True):
        assert (by_event[event.id].amount_minor, by_event[event.id].currency) == (minor, currency)


@pytest.mark.django_db
def test_enrichment_of_another_tenants_event_does_nothing(db):
    a, b = TenantFactory(), TenantFactory()
    [event] = _make_events(a, make_event("mine"))
    outcome = events_enrich(tenant_id=b.id, event_ids=[event.id])
    assert outcome.skipped == [event.id]
    assert _enriched(a) == []
    assert _enriched(b) == []
