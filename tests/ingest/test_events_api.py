"""POST /v1/events: answers for single events and batches, request-level errors, isolation."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from ingest.models import Event
from tenants.scope import system_scope, tenant_scope
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import api_request, encode, make_event
from tests.signing import django_headers

pytestmark = pytest.mark.django_db


def _rows(tenant) -> list[Event]:
    with tenant_scope(tenant.id):
        return list(Event.objects.filter(tenant=tenant).order_by("id"))


# --- single events ----------------------------------------------------------------------------


def test_new_event_is_202_accepted_with_id_and_stored(post_signed, signed):
    tenant = signed.tenant
    key = signed.key
    response = post_signed(make_event("order-1"))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    [row] = _rows(tenant)
    assert row.id == body["id"]
    assert (row.idempotency_key, row.type, row.source) == ("order-1", "sale.completed", "pos")
    assert row.key_id == key.key_id
    assert row.payload == {"amount": "12.34", "currency": "EUR", "store": "S1"}


def test_same_key_same_content_is_200_duplicate_with_the_same_id(post_signed, signed):
    first = post_signed(make_event("order-2")).json()
    response = post_signed(make_event("order-2"))
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "id": first["id"]}
    assert len(_rows(signed.tenant)) == 1


def test_same_instant_in_another_offset_is_the_same_content(post_signed):
    post_signed(make_event("order-tz", occurred_at="2026-01-15T10:30:00Z"))
    response = post_signed(make_event("order-tz", occurred_at="2026-01-15T12:30:00+02:00"))
    assert response.json()["status"] == "duplicate"


@pytest.mark.parametrize(
    "change",
    [
        {"type": "sale.refunded"},
        {"occurred_at": "2026-01-15T10:30:01Z"},
        {"source": "web"},
        {"payload": {"amount": "99.00", "currency": "EUR"}},
    ],
)
def test_same_key_other_content_is_422_idempotency_key_reused(post_signed, signed, change):
    post_signed(make_event("order-3"))
    response = post_signed(make_event("order-3", **change))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(_rows(signed.tenant)) == 1


def test_source_defaults_to_sdk_and_payload_to_empty_object(post_signed, signed):
    doc = make_event("minimal")
    del doc["source"], doc["payload"]
    assert post_signed(doc).status_code == 202
    [row] = _rows(signed.tenant)
    assert (row.source, row.payload) == ("sdk", {})


# --- batches ----------------------------------------------------------------------------------


def test_batch_answers_every_outcome_in_request_order(post_signed, signed):
    post_signed(make_event("existing"))
    post_signed(make_event("taken", type="a.b"))
    batch = {
        "events": [
            make_event("new-1"),
            make_event("existing"),  # duplicate of an earlier request
            make_event("new-1"),  # in-batch duplicate
            make_event("new-1", source="other"),  # in-batch conflict
            make_event("taken", type="c.d"),  # conflict with an earlier request
            make_event("bad", occurred_at="yesterday"),  # rejected
            {"type": "x"},  # rejected, no key
            make_event("new-2"),
        ]
    }
    response = post_signed(batch)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["conflicts"], body["rejected"]) == (
        2,
        2,
        2,
        2,
    )
    statuses = [(r["idempotency_key"], r["status"]) for r in body["results"]]
    assert statuses == [
        ("new-1", "accepted"),
        ("existing", "duplicate"),
        ("new-1", "duplicate"),
        ("new-1", "conflict"),
        ("taken", "conflict"),
        ("bad", "rejected"),
        (None, "rejected"),
        ("new-2", "accepted"),
    ]
    results = body["results"]
    assert results[0]["error"] is None
    assert results[2]["id"] == results[0]["id"]
    assert results[3]["error"]["code"] == "idempotency_key_reused"
    assert results[5]["error"]["code"] == "invalid_event"
    assert "occurred_at" in results[5]["error"]["message"]
    keys = [row.idempotency_key for row in _rows(signed.tenant)]
    assert sorted(keys) == ["existing", "new-1", "new-2", "taken"]
    [new1] = [r for r in _rows(signed.tenant) if r.idempotency_key == "new-1"]
    assert new1.source == "pos"  # the first occurrence is the one stored


def test_batch_of_500_is_accepted_in_one_request(post_signed, signed):
    response = post_signed({"events": [make_event(f"b500-{i}") for i in range(500)]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 500
    assert len(_rows(signed.tenant)) == 500


def test_batch_where_every_event_is_invalid_is_200_all_rejected(post_signed, signed):
    response = post_signed({"events": [{"nope": 1}, 3, "x"]})
    assert response.status_code == 200
    assert response.json()["rejected"] == 3
    assert _rows(signed.tenant) == []


# --- request-level errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        [make_event()],  # a bare list
        {"events": []},  # empty batch
        {"events": [make_event(f"x{i}") for i in range(501)]},  # too many
        {"events": "nope"},
        {"events": [make_event()], "extra": 1},
        "a string",
        42,
        None,
    ],
    ids=["bare-list", "empty", "501", "not-list", "extra-key", "string", "number", "null"],
)
def test_wrong_shape_is_400_invalid_request(post_signed, doc):
    response = post_signed(json.dumps(doc).encode())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"idempotency_key": 7}, "idempotency_key"),
        ({"idempotency_key": "a\x00b"}, "idempotency_key"),
        ({"type": "Sale"}, "type"),
        ({"type": ""}, "type"),
        ({"type": "a" * 101}, "type"),
        ({"occurred_at": "2026-01-15T10:30:00"}, "occurred_at"),  # no offset
        ({"occurred_at": "2026-13-45T10:30:00Z"}, "occurred_at"),
        ({"occurred_at": 1700000000}, "occurred_at"),
        ({"source": ""}, "source"),
        ({"source": "s" * 65}, "source"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": {"a": "x\x00y"}}, "payload"),
        ({"payload": {"blob": "x" * (64 * 1024)}}, "payload"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_single_event_is_400_invalid_request_naming_the_field(post_signed, change, field):
    response = post_signed(make_event(**change))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["message"]


def test_missing_required_fields_are_400(post_signed):
    for field in ("idempotency_key", "type", "occurred_at"):
        doc = make_event()
        del doc[field]
        response = post_signed(doc)
        assert response.status_code == 400
        assert field in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b'{"idempotency_key": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b"\xff\xfe\x00",
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a": ' + b"9" * 5000 + b"}",
    ],
    ids=["open", "text", "nan", "inf", "overflow", "bad-utf8", "deep", "bigint"],
)
def test_unparseable_body_is_400_malformed_json(post_signed, body):
    response = post_signed(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_lone_surrogate_in_payload_is_rejected_not_a_5xx(post_signed):
    body = b'{"idempotency_key": "s", "type": "a", "occurred_at": "2026-01-01T00:00:00Z",'
    body += b' "payload": {"x": "\\ud800"}}'
    response = post_signed(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_body_over_1_mib_is_413_payload_too_large(post_signed):
    body = encode({"events": [make_event(payload={"p": "x" * 60_000}) for _ in range(20)]})
    assert len(body) > 1024 * 1024
    response = post_signed(body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415_unsupported_media_type(post_signed, content_type):
    response = post_signed(make_event(), content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_json_with_charset_parameter_is_accepted(post_signed):
    response = post_signed(make_event(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def test_get_is_405_in_the_error_format(client, signed):
    sign = signed.sign
    response = client.get("/v1/events", **django_headers(sign(b"", method="GET")))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- rate limit -------------------------------------------------------------------------------


def test_over_the_tenant_rate_is_429_with_retry_after_and_ratelimit_headers(post_signed, settings):
    settings.CODEX_INGEST_RATE_PER_SEC = 5
    responses = [post_signed(make_event()) for _ in range(12)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert {r.status_code for r in responses} <= {202, 429}
    r = limited[0]
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r["Retry-After"]) >= 1
    assert r["RateLimit-Policy"] == '"tenant";q=5;w=1'
    assert r["RateLimit"].startswith('"tenant";r=0;t=')
    ok = next(r for r in responses if r.status_code == 202)
    assert "RateLimit" in ok
    assert "RateLimit-Policy" in ok


def test_rate_limit_is_per_tenant(client, settings, db):
    settings.CODEX_INGEST_RATE_PER_SEC = 2
    keys = [SigningKeyFactory(tenant=TenantFactory()) for _ in range(2)]

    def send(key):
        return api_request(client, key, "POST", "/v1/events", encode(make_event())).status_code

    first = [send(keys[0]) for _ in range(6)]
    assert 429 in first
    # Tenant B still has its own quota (at most one window edge between its two requests).
    assert send(keys[1]) == 202


def test_redis_down_rate_limit_fails_open_and_is_counted(post_signed, signed):
    from ingest import metrics

    before = metrics.RATELIMIT_ERRORS._value.get()
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    with override_settings(CACHES=dead):
        response = post_signed(make_event("redis-down"))
    assert response.status_code == 202, response.content
    assert "RateLimit-Policy" in response
    assert "RateLimit" not in response
    assert metrics.RATELIMIT_ERRORS._value.get() == before + 1
    assert [r.idempotency_key for r in _rows(signed.tenant)] == ["redis-down"]


# --- tenants ----------------------------------------------------------------------------------


def test_tenant_b_gets_its_own_event_for_the_same_key_and_never_sees_a(client, db):
    a, b = TenantFactory(), TenantFactory()
    key_a, key_b = SigningKeyFactory(tenant=a), SigningKeyFactory(tenant=b)

    def send(key, doc):
        return api_request(client, key, "POST", "/v1/events", encode(doc))

    ra = send(key_a, make_event("shared-key", payload={"who": "a"}))
    # Different content under the same key: for B this is new, not a conflict with A's event.
    rb = send(key_b, make_event("shared-key", payload={"who": "b"}))
    assert ra.status_code == 202
    assert rb.status_code == 202
    assert ra.json()["id"] != rb.json()["id"]
    # For B, A's content under that key is a conflict with B's own event.
    assert send(key_b, make_event("shared-key", payload={"who": "a"})).status_code == 422
    assert send(key_a, make_event("shared-key", payload={"who": "a"})).json() == {
        "status": "duplicate",
        "id": ra.json()["id"],
    }
    # Row-level security: in B's scope, A's event does not exist, even by id; B cannot update it.
    with tenant_scope(b.id):
        assert not Event.objects.filter(id=ra.json()["id"]).exists()
        assert Event.objects.filter(id=ra.json()["id"]).update(type="hacked") == 0
        assert [e.payload for e in Event.objects.all()] == [{"who": "b"}]
    with system_scope("test"):
        assert Event.objects.get(id=ra.json()["id"]).payload == {"who": "a"}
        assert Event.objects.get(id=ra.json()["id"]).type == "sale.completed"
