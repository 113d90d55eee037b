"""The enrichment drain: exactly once under concurrent drains, per-event retry and DLQ, amounts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from prometheus_client import REGISTRY

from ingest import selectors
from ingest.models import DeadLetter, EnrichedEvent, Event
from ingest.services.enrich import events_drain, events_enrich
from tenants.scope import tenant_scope
from tests.factories import EventFactory, TenantFactory
from tests.helpers import make_event


def _ledger(tenant, docs):
    """Ledger rows written directly (no wake-up), one INSERT."""
    now = timezone.now()
    with tenant_scope(tenant.id):
        return Event.objects.bulk_create(
            [EventFactory.build(tenant=tenant, received_at=now, **d) for d in docs]
        )


def _enriched_ids(tenant) -> list[int]:
    with tenant_scope(tenant.id):
        return list(EnrichedEvent.objects.filter(tenant=tenant).values_list("event_id", flat=True))


def _unusable() -> float:
    return REGISTRY.get_sample_value("codex_enrich_amount_unusable_total") or 0.0


def _event(tenant, event_id) -> Event:
    with tenant_scope(tenant.id):
        return Event.objects.get(tenant=tenant, id=event_id)


def test_two_concurrent_drains_enrich_every_event_exactly_once(transactional_db):
    tenant = TenantFactory()
    events = _ledger(tenant, [make_event() for _ in range(3000)])
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def drain(name: str) -> None:
        try:
            start.wait()
            while True:
                outcome = events_drain(tenant_id=tenant.id, limit=200)
                if not outcome.claimed:
                    break
                claimed[name].extend(outcome.enriched)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = set(claimed["a"]), set(claimed["b"])
    assert a, "both drains should have taken a share"
    assert b, "both drains should have taken a share"
    assert not a & b, "an event was enriched by both drains"
    assert a | b == {e.id for e in events}
    ids = _enriched_ids(tenant)
    assert len(ids) == len(set(ids)) == 3000
    with tenant_scope(tenant.id):
        assert not Event.objects.filter(tenant=tenant, enriched_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_failing_event_retries_on_its_own_backoff_then_dead_letters(db, settings):
    tenant = TenantFactory()
    settings.CODEX_ENRICH_FAIL_TYPES = {"fault.enrich"}
    settings.CODEX_ENRICH_RETRY_BASE_S = 30
    good, bad = _ledger(tenant, [make_event(), make_event(type="fault.enrich")])

    first = events_drain(tenant_id=tenant.id)
    assert first.enriched == [good.id]  # the neighbour is not held up
    assert list(first.failed) == [bad.id]
    assert first.retry_in == 30
    row = _event(tenant, bad.id)
    assert row.enrich_attempts == 1
    assert row.enriched_at is None
    assert row.enrich_retry_at > timezone.now() + timedelta(seconds=25)
    # Not due yet: neither a drain nor the sweeper takes it again (no second retry chain).
    assert events_drain(tenant_id=tenant.id).claimed == 0
    assert selectors.events_unenriched_by_tenant(older_than=timedelta(0)) == {}

    retry_cap = 3  # the flag's default
    for attempt in range(2, retry_cap + 2):
        with tenant_scope(tenant.id):
            Event.objects.filter(tenant=tenant, id=bad.id).update(
                enrich_retry_at=timezone.now() - timedelta(seconds=1)
            )
        outcome = events_drain(tenant_id=tenant.id)
        assert list(outcome.failed) == [bad.id]
        assert _event(tenant, bad.id).enrich_attempts == attempt
    assert outcome.dead_lettered == [bad.id]
    with tenant_scope(tenant.id):
        [entry] = DeadLetter.objects.filter(tenant=tenant)
    assert entry.attempts == retry_cap + 1
    assert entry.first_failed_at == _event(tenant, bad.id).enrich_failed_at
    # Parked: no drain or sweep takes it; a replay still can.
    with tenant_scope(tenant.id):
        Event.objects.filter(tenant=tenant, id=bad.id).update(received_at=timezone.now())
    assert events_drain(tenant_id=tenant.id).claimed == 0
    assert selectors.events_unenriched_by_tenant(older_than=timedelta(0)) == {}
    settings.CODEX_ENRICH_FAIL_TYPES = set()
    assert events_enrich(tenant_id=tenant.id, event_ids=[bad.id]).enriched == [bad.id]
    with tenant_scope(tenant.id):
        assert DeadLetter.objects.get(id=entry.id).resolved_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "minor"),
    [
        ({"amount": "1e999999", "currency": "EUR"}, None),
        ({"amount": "-1e-999999", "currency": "EUR"}, None),
        ({"amount": "NaN", "currency": "EUR"}, None),
        ({"amount": "Infinity", "currency": "EUR"}, None),
        ({"amount": "99999999999999999999", "currency": "EUR"}, None),
        ({"amount_minor": 2**63, "currency": "EUR"}, None),
        ({"amount": 1e300, "currency": "EUR"}, None),
        ({"amount": "12.345", "currency": "EUR"}, 1234),  # half-even, as Decimal rounds
        ({"amount": 0.1, "currency": "JPY"}, 0),
    ],
)
def test_unusable_amounts_enrich_with_a_null_amount_and_are_counted(db, payload, minor):
    tenant = TenantFactory()
    [event] = _ledger(tenant, [make_event(payload=payload)])
    before = _unusable()
    outcome = events_drain(tenant_id=tenant.id)
    assert outcome.enriched == [event.id]
    assert not outcome.failed
    with tenant_scope(tenant.id):
        row = EnrichedEvent.objects.get(tenant=tenant, event_id=event.id)
    assert row.amount_minor == minor
    counted = _unusable() - before
    assert counted == (1 if minor is None else 0)


def test_drain_claims_only_its_tenants_rows(transactional_db):
    a, b = TenantFactory(), TenantFactory()
    _ledger(a, [make_event()])
    _ledger(b, [make_event()])
    assert events_drain(tenant_id=a.id).claimed == 1
    assert _enriched_ids(b) == []
    connection.close()


@pytest.mark.django_db
def test_an_absurd_amount_is_accepted_and_enriches_with_a_null_amount(post_signed, signed):
    tenant = signed.tenant
    response = post_signed(make_event(payload={"amount": "1e999999", "currency": "EUR"}))
    assert response.status_code == 202  # the payload is the sender's: stored as sent
    outcome = events_drain(tenant_id=tenant.id)
    assert outcome.enriched == [response.json()["id"]]
    assert not outcome.failed
    with tenant_scope(tenant.id):
        assert EnrichedEvent.objects.get(tenant=tenant).amount_minor is None
