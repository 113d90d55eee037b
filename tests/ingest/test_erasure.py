"""events_erase: one subject's events and derived rows go, audited without the data."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from ingest import partitions
from ingest.lookup import ERASED, event_status_get
from ingest.models import IdempotencyKey
from ingest.services.accept import events_ingest
from ingest.services.erasure import events_erase, subject_digest
from ingest.validation import parse_body
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.helpers import encode, make_event
from tests.ingest.lifecycle_helpers import counts, put_event

NOW = datetime.now(UTC)


def _ingest(tenant, key: str, subject: str | None):
    items = parse_body(encode(make_event(key, subject_id=subject))).items
    [result] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    return items, result


def test_erase_removes_the_subjects_events_and_derived_rows_only(db, tenant_factory):
    tenant, other = tenant_factory("shop"), tenant_factory("other-shop")
    put_event(tenant, "a-1", NOW, subject="alice", enriched=True)
    put_event(tenant, "a-2", NOW, subject="alice", dead_letter=True)
    put_event(tenant, "b-1", NOW, subject="bob", enriched=True)
    put_event(tenant, "n-1", NOW)
    put_event(other, "x-1", NOW, subject="alice", enriched=True)  # same id, other tenant

    result = events_erase(tenant_id=tenant.id, subject_id="alice", actor="test")
    assert (result.events, result.enriched, result.dead_letters) == (2, 1, 1)
    assert counts(tenant) == {
        "ingest_event": 2,
        "events_enriched": 1,
        "ingest_deadletter": 0,
        "ingest_idempotency": 4,  # kept, marked erased
    }
    assert counts(other)["ingest_event"] == 1
    with tenant_scope(tenant.id):
        erased = set(
            IdempotencyKey.objects.filter(erased_at__isnull=False).values_list(
                "idempotency_key", flat=True
            )
        )
    assert erased == {"a-1", "a-2"}
    with system_scope("test-check"):
        [audit] = AuditLog.objects.filter(action="events.erase")
    assert audit.tenant_id == tenant.id
    assert audit.actor == "test"
    assert audit.new == {"events": 2, "enriched": 1, "dead_letters": 1, "before": None}
    assert audit.target == f"subject:{subject_digest('alice')}"
    assert "alice" not in f"{audit.target} {audit.new} {audit.old}"


def test_an_erased_event_resent_is_a_duplicate_and_its_lookup_says_erased(db, tenant_factory):
    tenant = tenant_factory()
    items, first = _ingest(tenant, "e-1", "carol")
    assert first.status == "accepted"
    events_erase(tenant_id=tenant.id, subject_id="carol", actor="test")
    [again] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    assert (again.status, again.id) == ("duplicate", first.id)
    assert counts(tenant)["ingest_event"] == 0  # the erased data does not come back
    status = event_status_get(tenant_id=tenant.id, idempotency_key="e-1")
    assert status.status == ERASED
    assert status.type == ""  # nothing of the event is left to show


def test_erase_before_a_date_keeps_later_events(db, tenant_factory):
    tenant = tenant_factory()
    old = NOW - timedelta(days=45)
    partitions.partitions_ensure(since=old.date())
    put_event(tenant, "old", old, subject="dave", enriched=True)
    put_event(tenant, "new", NOW, subject="dave", enriched=True)
    result = events_erase(
        tenant_id=tenant.id, subject_id="dave", before=NOW - timedelta(days=1), actor="t"
    )
    assert result.events == 1
    assert counts(tenant)["ingest_event"] == 1


def test_erase_goes_in_batches(db, tenant_factory):
    tenant = tenant_factory()
    for i in range(5):
        put_event(tenant, f"p-{i}", NOW, subject="erin", enriched=True)
    assert events_erase(tenant_id=tenant.id, subject_id="erin", actor="t", limit=2).events == 5
    assert counts(tenant)["ingest_event"] == 0


def test_events_erase_command_output_and_bad_input(db, tenant_factory):
    tenant = tenant_factory("cmd-shop")
    put_event(tenant, "c-1", NOW, subject="frank")
    out = io.StringIO()
    call_command("events_erase", "cmd-shop", "--subject", "frank", stdout=out)
    assert out.getvalue().strip() == "cmd-shop: erased events=1 enriched=0 dead_letters=0"
    with system_scope("test-check"):
        assert AuditLog.objects.get(action="events.erase").actor.startswith("cli:")
    with pytest.raises(CommandError, match="no tenant 'nope'"):
        call_command("events_erase", "nope", "--subject", "frank")
    with pytest.raises(CommandError, match="--before must be a date"):
        call_command("events_erase", "cmd-shop", "--subject", "frank", "--before", "soon")
    with pytest.raises(CommandError, match="1 to 255"):
        call_command("events_erase", "cmd-shop", "--subject", "x" * 256)
    with pytest.raises(CommandError, match="--subject"):
        call_command("events_erase", "cmd-shop")
