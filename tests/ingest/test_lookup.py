"""GET /v1/events/<key>: the tenant's event and its fate; other tenants' keys are not found."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ingest.models import DeadLetter
from ingest.services.deadletters import deadletter_record
from ingest.services.enrich import events_drain
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import api_request, make_event

pytestmark = pytest.mark.django_db


def _get(client, key, idem: str, *, signed: bool = True):
    path = "/v1/events/" + quote(idem, safe="")
    return api_request(client, key, "GET", path) if signed else client.get(path)


def test_lookup_of_an_accepted_event_gives_its_id_and_status_accepted(client, signed, post_signed):
    key = signed.key
    posted = post_signed(make_event("order-1"))
    assert posted.status_code == 202
    response = _get(client, key, "order-1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == posted.json()["id"]
    assert body["status"] == "accepted"
    assert body["idempotency_key"] == "order-1"
    assert body["received_at"]
    assert body["enriched_at"] is None
    assert body["dead_letter"] is None


def test_lookup_after_enrichment_says_enriched_with_enriched_at(client, signed, post_signed):
    tenant = signed.tenant
    key = signed.key
    post_signed(make_event("order-2"))
    events_drain(tenant_id=tenant.id)
    body = _get(client, key, "order-2").json()
    assert body["status"] == "enriched"
    assert body["enriched_at"] >= body["received_at"]


def test_lookup_of_a_dead_lettered_event_names_stage_and_error_class(client, signed, post_signed):
    tenant = signed.tenant
    key = signed.key
    event_id = post_signed(make_event("order-3")).json()["id"]
    deadletter_record(
        tenant_id=tenant.id,
        failures={event_id: ZeroDivisionError("boom")},
        attempts=4,
        first_failed_at=None,
    )
    body = _get(client, key, "order-3").json()
    assert body["status"] == "dead_lettered"
    assert body["dead_letter"]["stage"] == DeadLetter.Stage.ENRICH
    assert body["dead_letter"]["error_class"] == "builtins.ZeroDivisionError"
    assert body["dead_letter"]["attempts"] == 4


def test_a_key_with_slashes_and_unicode_is_found(client, signed, post_signed):
    key = signed.key
    post_signed(make_event("store/7/ordre-é 1"))
    assert _get(client, key, "store/7/ordre-é 1").json()["status"] == "accepted"


def test_another_tenants_key_is_404_like_a_missing_one(client, signed, post_signed, db):
    post_signed(make_event("mine-only"))
    other_key = SigningKeyFactory(tenant=TenantFactory())
    for idem in ("mine-only", "never-sent"):
        response = _get(client, other_key, idem)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert response.json()["error"]["rid"]


@pytest.mark.parametrize("idem", ["nul\x00key", "x" * 256])
def test_keys_the_ledger_cannot_hold_are_404_not_500(client, signed, idem):
    key = signed.key
    assert _get(client, key, idem).status_code == 404


def test_unsigned_lookup_is_401_and_post_is_405(client, signed, post_signed):
    key = signed.key
    post_signed(make_event("order-4"))
    response = _get(client, key, "order-4", signed=False)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_signature"
    response = api_request(client, key, "POST", "/v1/events/order-4")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_lookup_flood_of_one_key_gets_429_with_retry_after_and_the_rid(client, signed, db):
    from codex import metrics as codex_metrics
    from flags.services import flag_update

    tenant, key = signed.tenant, signed.key
    flag_update(tenant_id=tenant.id, values={"lookupRatePerSec": 3}, actor="t", via="cli")
    rejected = codex_metrics.READ_RATELIMIT_REJECTIONS.labels(endpoint="lookup", tenant=tenant.slug)
    before = rejected._value.get()
    answers = [_get(client, key, "nope") for _ in range(10)]
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {404, 429}, statuses
    assert statuses.count(429) >= 10 - 2 * 3  # at most two one-second windows of 3
    limited = next(a for a in answers if a.status_code == 429)
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["rid"] == limited["X-Request-ID"]
    assert limited["Retry-After"] == "1"
    assert limited["RateLimit-Policy"] == '"key";q=3;w=1'
    assert rejected._value.get() == before + statuses.count(429)
    # Per key: another key of the same tenant still reads.
    assert _get(client, SigningKeyFactory(tenant=tenant), "nope").status_code == 404
