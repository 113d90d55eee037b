"""events_erase: one subject's events and derived rows go, audited without the data."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from ingest import partitions
from ingest.ingest_warnings import WarningEntry, ingest_warnings_record
from ingest.lookup import ERASED, event_status_get
from ingest.models import IdempotencyKey, IngestWarning
from ingest.services.accept import events_ingest
from ingest.services.erasure import events_erase, subject_digest
from ingest.validation import parse_body
from tenants.models import AuditLog
from tenants.scope import system_scope, tenant_scope
from tests.factories import TenantFactory
from tests.helpers import encode, make_event
from tests.ingest.lifecycle_helpers import counts, put_event

NOW = datetime.now(UTC)


def _ingest(tenant, key: str, subject: str | None):
    items = parse_body(encode(make_event(key, subject_id=subject))).items
    [result] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    return items, result


def test_erase_removes_the_subjects_events_and_derived_rows_only(db):
    tenant, other = TenantFactory(slug="shop"), TenantFactory(slug="other-shop")
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
    assert audit.new == {
        "events": 2,
        "enriched": 1,
        "dead_letters": 1,
        "warnings": 0,
        "before": None,
    }
    assert audit.target == f"subject:{subject_digest('alice')}"
    assert "alice" not in f"{audit.target} {audit.new} {audit.old}"


def test_an_erased_event_resent_is_a_duplicate_and_its_lookup_says_erased(db):
    tenant = TenantFactory()
    items, first = _ingest(tenant, "e-1", "carol")
    assert first.status == "accepted"
    events_erase(tenant_id=tenant.id, subject_id="carol", actor="test")
    [again] = events_ingest(tenant_id=tenant.id, key_id="k", items=items)
    assert (again.status, again.id) == ("duplicate", first.id)
    assert counts(tenant)["ingest_event"] == 0  # the erased data does not come back
    status = event_status_get(tenant_id=tenant.id, idempotency_key="e-1")
    assert status.status == ERASED
    assert status.type == ""  # nothing of the event is left to show


def test_erase_before_a_date_keeps_later_events(db):
    tenant = TenantFactory()
    old = NOW - timedelta(days=45)
    partitions.partitions_ensure(since=old.date())
    put_event(tenant, "old", old, subject="dave", enriched=True)
    put_event(tenant, "new", NOW, subject="dave", enriched=True)
    result = events_erase(
        tenant_id=tenant.id, subject_id="dave", before=NOW - timedelta(days=1), actor="t"
    )
    assert result.events == 1
    assert counts(tenant)["ingest_event"] == 1


def test_erase_goes_in_batches(db):
    tenant = TenantFactory()
    for i in range(5):
        put_event(tenant, f"p-{i}", NOW, subject="erin", enriched=True)
    assert events_erase(tenant_id=tenant.id, subject_id="erin", actor="t", limit=2).events == 5
    assert counts(tenant)["ingest_event"] == 0


def test_events_erase_command_output_and_bad_input(db):
    tenant = TenantFactory(slug="cmd-shop")
    put_event(tenant, "c-1", NOW, subject="frank")
    out = io.StringIO()
    call_command("events_erase", "cmd-shop", "--subject", "frank", stdout=out)
    assert (
        out.getvalue().strip() == "cmd-shop: erased events=1 enriched=0 dead_letters=0 warnings=0"
    )
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


def _warning_items(tenant) -> list[str]:
    with tenant_scope(tenant.id):
        return sorted(IngestWarning.objects.filter(tenant=tenant).values_list("item", flat=True))


def _record(tenant, *items: str) -> None:
    ingest_warnings_record(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        key_id="k",
        entries=[WarningEntry(code="invalid_delivery", message="m", item=i) for i in items],
    )


def test_erase_removes_the_subjects_ingestion_warnings_by_column_and_by_text(signed, post_signed):
    tenant = signed.tenant
    post_signed(make_event("taken", subject_id="alice"))
    refused = {"idempotency_key": "r-1", "type": "BAD TYPE", "subject_id": "alice"}
    conflict = make_event("taken", subject_id="alice", payload={"other": 1})
    long_item = {"subject_id": "alice", "type": "BAD", "payload": {"pad": "x" * 9000}}
    bob = {"type": "BAD", "subject_id": "bob", "payload": {"note": "alice2 and malice"}}
    assert post_signed({"events": [refused, conflict, long_item, bob]}).json()["rejected"] == 3
    assert post_signed(make_event("taken", subject_id="alice", payload={"n": 2})).status_code == 422
    assert post_signed({"events": [make_event("fine")], "extra": "alice"}).status_code == 400
    # No column: found by the text (a platform's body, a malformed request, a numeric id).
    _record(tenant, '{"customer": {"name": "alice"}}', '{"customer":{"id": 4242}, "total": 1}')
    _record(tenant, '{"customer": {"id": 42420}}', '{"note": "alice-like"}')
    other = TenantFactory()
    _record(other, '{"subject_id": "alice"}')
    assert len(_warning_items(tenant)) == 10
    with tenant_scope(tenant.id):  # the refused item's own subject_id: 3 batch items, the 422
        assert IngestWarning.objects.filter(subject_id="alice").count() == 4

    result = events_erase(tenant_id=tenant.id, subject_id="alice", actor="test")
    assert result.warnings == 4 + 2  # and by text: the 400's body, the platform's body
    left = _warning_items(tenant)
    assert len(left) == 4, left
    assert all('"alice"' not in item for item in left)  # "alice2", "malice", "alice-like" stay
    assert events_erase(tenant_id=tenant.id, subject_id="4242", actor="test").warnings == 1
    assert sorted(json.loads(item).get("subject_id", "") for item in _warning_items(tenant)) == [
        "",
        "",
        "bob",
    ]
    assert len(_warning_items(other)) == 1  # another tenant's warnings are not touched
    with system_scope("test-check"):
        audit = AuditLog.objects.filter(action="events.erase").order_by("id").first()
    assert audit.new["warnings"] == 6


def test_erase_before_a_date_keeps_later_warnings(signed, post_signed):
    tenant = signed.tenant
    post_signed({"events": [{"type": "BAD", "subject_id": "gina"}] * 2})
    with tenant_scope(tenant.id):
        first = IngestWarning.objects.filter(tenant=tenant).order_by("id").first()
        IngestWarning.objects.filter(id=first.id).update(created_at=NOW - timedelta(days=3))
    result = events_erase(
        tenant_id=tenant.id, subject_id="gina", before=NOW - timedelta(days=1), actor="t"
    )
    assert result.warnings == 1
    assert len(_warning_items(tenant)) == 1
