"""subject_id on events: validated, stored, part of the content, and what the SDK sends."""

from __future__ import annotations

import pytest

from codex_sdk.events import build_event, encode_event
from ingest.models import Event
from tenants.scope import tenant_scope
from tests.helpers import make_event


@pytest.mark.django_db
def test_an_event_with_a_subject_stores_it(post_signed, signed):
    tenant = signed.tenant
    response = post_signed(make_event("s-1", subject_id="cus_42"))
    assert response.status_code == 202, response.content
    with tenant_scope(tenant.id):
        assert Event.objects.get(tenant_id=tenant.id, idempotency_key="s-1").subject_id == "cus_42"


@pytest.mark.django_db
def test_an_event_without_a_subject_stores_null(post_signed, signed):
    tenant = signed.tenant
    assert post_signed(make_event("s-2")).status_code == 202
    with tenant_scope(tenant.id):
        assert Event.objects.get(tenant_id=tenant.id, idempotency_key="s-2").subject_id is None


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["", "x" * 256, 7, ["a"], {"id": 1}, "nul\u0000"])
def test_a_bad_subject_is_a_400_naming_the_field(post_signed, bad):
    response = post_signed(make_event("s-bad", subject_id=bad))
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_request"
    assert "subject_id" in body["error"]["message"]
    assert body["error"]["rid"]


@pytest.mark.django_db
def test_a_bad_subject_in_a_batch_rejects_that_event_only(post_signed):
    response = post_signed(
        {"events": [make_event("ok-1", subject_id="p1"), make_event("bad-1", subject_id="")]}
    )
    assert response.status_code == 200, response.content
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "rejected"]


@pytest.mark.django_db
def test_the_same_key_with_another_subject_is_a_conflict(post_signed):
    assert post_signed(make_event("s-3", subject_id="alice")).status_code == 202
    again = post_signed(make_event("s-3", subject_id="alice"))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    other = post_signed(make_event("s-3", subject_id="bob"))
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_the_sdks_event_with_a_subject_is_accepted_as_sent(post_signed, signed):
    tenant = signed.tenant
    event = build_event("sale.completed", {"amount": "3.10"}, subject_id="cus_sdk")
    response = post_signed(encode_event(event).encode())
    assert response.status_code == 202, response.content
    with tenant_scope(tenant.id):
        stored = Event.objects.get(tenant_id=tenant.id, idempotency_key=event["idempotency_key"])
    assert stored.subject_id == "cus_sdk"
