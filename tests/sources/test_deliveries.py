"""POST /v1/sources/<id>/webhooks: each platform's signature, the ledger write, every answer."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from ingest.models import EnrichedEvent, Event
from ingest.services.enrich import events_drain
from ingest.webhooks.services import source_counts_flush
from tenants.models import WebhookSource
from tenants.scope import tenant_scope
from tenants.services.sources import source_rotate_secret, source_set_enabled
from tests.factories import TenantFactory, WebhookSourceFactory
from tests.helpers import SHOPIFY_SECRET, STANDARD_SECRET, STRIPE_SECRET
from tests.sources.webhook_signing import (
    encode,
    shopify_headers,
    shopify_order,
    standard_headers,
    stripe_charge_event,
    stripe_header_documented,
    stripe_header_library,
)


def _events(tenant) -> list[Event]:
    with tenant_scope(tenant.id):
        return list(Event.objects.filter(tenant=tenant).order_by("id"))


def _enriched(tenant) -> list[EnrichedEvent]:
    events_drain(tenant_id=tenant.id)
    with tenant_scope(tenant.id):
        return list(EnrichedEvent.objects.filter(tenant=tenant).order_by("event_id"))


def _source_row(info) -> WebhookSource:
    source_counts_flush()  # a burst's counts are written at most once a second
    tenant_id = info.source_id.split("_")[1]
    with tenant_scope(tenant_id):
        return WebhookSource.objects.get(source_id=info.source_id)


def test_shopify_order_signed_as_shopify_documents_is_stored_and_enriched(sources, deliver):
    body = encode(shopify_order())
    response = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    [event] = _events(sources.tenant)
    assert response.json()["id"] == event.id
    digest = hashlib.sha256(body).hexdigest()
    assert event.idempotency_key == f"shopify:{sources.shopify.source_id}:{digest}"
    assert event.payload["event_id"] == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert event.type == "shopify.orders.create"
    assert event.source == "shopify"
    assert event.key_id == sources.shopify.source_id
    assert event.occurred_at == datetime(2026, 3, 29, 18, 0, 27, 877041, tzinfo=UTC)
    assert event.payload["shop_domain"] == "acme-store.myshopify.com"
    assert event.payload["topic"] == "orders/create"
    assert event.payload["body"]["total_price"] == "403.00"
    [enriched] = _enriched(sources.tenant)
    assert (enriched.amount_minor, enriched.currency) == (40300, "USD")
    row = _source_row(sources.shopify)
    assert (row.accepted_count, row.duplicate_count) == (1, 0)
    assert row.last_received_at is not None


def test_shopify_without_event_ids_is_keyed_by_its_body_at_the_receipt_time(sources, deliver):
    body = encode(shopify_order(currency="JPY", total_price="1500"))
    headers = shopify_headers(SHOPIFY_SECRET, body, **{"X-Shopify-Topic": "orders/paid"})
    del headers["X-Shopify-Event-Id"], headers["X-Shopify-Webhook-Id"]
    del headers["X-Shopify-Triggered-At"]
    before = datetime.now(UTC)
    assert deliver(sources.shopify, body, headers).status_code == 200
    [event] = _events(sources.tenant)
    digest = hashlib.sha256(body).hexdigest()
    assert event.idempotency_key == f"shopify:{sources.shopify.source_id}:{digest}"
    assert event.payload["event_id"] is None
    assert event.type == "shopify.orders.paid"
    assert event.occurred_at >= before - timedelta(seconds=1)
    [enriched] = _enriched(sources.tenant)
    assert (enriched.amount_minor, enriched.currency) == (1500, "JPY")


@pytest.mark.parametrize("signer", [stripe_header_documented, stripe_header_library])
def test_stripe_charge_signed_by_the_documented_scheme_and_the_library_is_stored(
    sources, deliver, signer
):
    doc = stripe_charge_event()
    body = encode(doc)
    response = deliver(sources.stripe, body, {"Stripe-Signature": signer(STRIPE_SECRET, body)})
    assert response.status_code == 200, response.content
    [event] = _events(sources.tenant)
    assert event.idempotency_key == "stripe:evt_3MmlLrLkdIwHu7ix0snN0B15"
    assert event.type == "stripe.charge.succeeded"
    assert event.occurred_at == datetime.fromtimestamp(doc["created"], UTC)
    assert event.payload["body"]["data"]["object"]["customer"] == "cus_NffrFeUfNV2Hib"
    [enriched] = _enriched(sources.tenant)
    assert (enriched.amount_minor, enriched.currency) == (1099, "USD")


def test_stripe_signature_with_several_v1_entries_verifies_when_one_matches(sources, deliver):
    body = encode(stripe_charge_event())
    header = stripe_header_documented(STRIPE_SECRET, body)
    header = header.replace(",v1=", ",v1=" + "0" * 64 + ",v1=")
    assert deliver(sources.stripe, body, {"Stripe-Signature": header}).status_code == 200


def test_standard_webhooks_delivery_signed_by_the_library_is_stored(sources, deliver):
    doc = {"type": "invoice.paid", "amount": "12.50", "currency": "EUR", "id": "inv_1"}
    body = encode(doc)
    response = deliver(sources.standard, body, standard_headers(STANDARD_SECRET, body, "msg_1"))
    assert response.status_code == 200, response.content
    [event] = _events(sources.tenant)
    key = f"standard:{sources.standard.source_id}:msg_1"
    assert (event.idempotency_key, event.type) == (key, "invoice.paid")
    [enriched] = _enriched(sources.tenant)
    assert (enriched.amount_minor, enriched.currency) == (1250, "EUR")


def test_standard_source_reads_the_type_from_its_configured_field(sources, deliver):
    info = WebhookSourceFactory(
        tenant=sources.tenant,
        kind="standard",
        secret=STANDARD_SECRET,
        type_field="event_type",
        actor="t",
    )
    body = encode({"event_type": "user.created", "type": "ignored"})
    response = deliver(info, body, standard_headers(STANDARD_SECRET, body, "msg_2"))
    assert response.status_code == 200, response.content
    assert _events(sources.tenant)[0].type == "user.created"


@pytest.mark.parametrize("kind", ["shopify", "stripe", "standard"])
def test_wrong_secret_is_401_in_our_error_format_and_nothing_is_stored(sources, deliver, kind):
    body = encode(stripe_charge_event() if kind == "stripe" else {"type": "x.y"})
    wrong = "whsec_" + "QUJD" * 8
    headers = {
        "shopify": shopify_headers(wrong, body),
        "stripe": {"Stripe-Signature": stripe_header_library(wrong, body)},
        "standard": standard_headers(wrong, body, "msg_3"),
    }[kind]
    response = deliver(getattr(sources, kind), body, headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert error["rid"] == response["X-Request-ID"]
    assert _events(sources.tenant) == []


@pytest.mark.parametrize("kind", ["shopify", "stripe", "standard"])
def test_missing_signature_is_401_missing_signature(sources, deliver, kind):
    response = deliver(getattr(sources, kind), b"{}", {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_signature"


def test_stale_stripe_timestamp_is_401_even_when_correctly_signed(sources, deliver):
    body = encode(stripe_charge_event())
    stale = int(time.time()) - 301
    header = stripe_header_library(STRIPE_SECRET, body, timestamp=stale)
    response = deliver(sources.stripe, body, {"Stripe-Signature": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "timestamp_out_of_tolerance"
    assert _events(sources.tenant) == []


def test_stale_standard_timestamp_is_401(sources, deliver):
    body = encode({"type": "a.b"})
    headers = standard_headers(STANDARD_SECRET, body, "m", timestamp=int(time.time()) - 400)
    response = deliver(sources.standard, body, headers)
    assert response.json()["error"]["code"] == "timestamp_out_of_tolerance"


def test_duplicate_delivery_is_200_and_stored_once(sources, deliver):
    body = encode(shopify_order())
    first = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    again = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert first.json()["status"] == "accepted"
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert len(_events(sources.tenant)) == 1
    row = _source_row(sources.shopify)
    assert (row.accepted_count, row.duplicate_count) == (1, 1)


def test_stripe_retry_with_other_pending_webhooks_is_a_duplicate_not_an_error(sources, deliver):
    doc = stripe_charge_event()
    body = encode(doc)
    first = deliver(
        sources.stripe, body, {"Stripe-Signature": stripe_header_library(STRIPE_SECRET, body)}
    )
    retry = encode({**doc, "pending_webhooks": 0})
    again = deliver(
        sources.stripe, retry, {"Stripe-Signature": stripe_header_library(STRIPE_SECRET, retry)}
    )
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    [event] = _events(sources.tenant)
    assert event.payload["body"]["pending_webhooks"] == 1  # the first delivery stays


def test_rotated_secret_old_one_verifies_during_the_overlap_only(sources, deliver):
    new_secret = "shpss_new_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    source_rotate_secret(
        source_id=sources.shopify.source_id,
        secret=new_secret,
        overlap=timedelta(hours=1),
        actor="t",
    )
    body1 = encode(shopify_order(id=1))
    old = shopify_headers(SHOPIFY_SECRET, body1, **{"X-Shopify-Event-Id": "e-old"})
    assert deliver(sources.shopify, body1, old).status_code == 200
    body2 = encode(shopify_order(id=2))
    new = shopify_headers(new_secret, body2, **{"X-Shopify-Event-Id": "e-new"})
    assert deliver(sources.shopify, body2, new).status_code == 200
    # Overlap over: a rotation with no overlap drops the old secret at once.
    source_rotate_secret(
        source_id=sources.shopify.source_id, secret=new_secret, overlap=timedelta(0), actor="t"
    )
    body3 = encode(shopify_order(id=3))
    stale = shopify_headers(SHOPIFY_SECRET, body3, **{"X-Shopify-Event-Id": "e-3"})
    assert deliver(sources.shopify, body3, stale).status_code == 401
    fresh = shopify_headers(new_secret, body3, **{"X-Shopify-Event-Id": "e-3"})
    assert deliver(sources.shopify, body3, fresh).status_code == 200
    assert len(_events(sources.tenant)) == 3


def test_disabled_source_is_410_and_enabling_it_accepts_again(sources, deliver):
    body = encode(shopify_order())
    source_set_enabled(source_id=sources.shopify.source_id, enabled=False, actor="t")
    response = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "source_disabled"
    assert _events(sources.tenant) == []
    source_set_enabled(source_id=sources.shopify.source_id, enabled=True, actor="t")
    assert deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sources/src_nope/webhooks",
        "/v1/sources/src_" + "0" * 32 + "_" + "0" * 24 + "/webhooks",
    ],
)
def test_unknown_source_is_404_in_our_format(db, deliver, path):
    response = deliver(path, b"{}", {})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_source"


def test_a_source_of_tenant_a_never_writes_into_tenant_b(sources, deliver, db):
    other = TenantFactory()
    b_secret = "shpss_b_" + "0123456789abcdef" * 2
    other_source = WebhookSourceFactory(tenant=other, kind="shopify", secret=b_secret, actor="t")
    body = encode(shopify_order())
    # A's source, signed with B's secret: refused.
    assert deliver(sources.shopify, body, shopify_headers(b_secret, body)).status_code == 401
    # A's random part under B's tenant id: no such source.
    forged = sources.shopify.path.replace(sources.tenant.id.hex, other.id.hex)
    assert deliver(forged, body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 404
    # A correct delivery to A lands in A only, and B's in B only.
    assert deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 200
    assert deliver(other_source, body, shopify_headers(b_secret, body)).status_code == 200
    assert [e.key_id for e in _events(sources.tenant)] == [sources.shopify.source_id]
    assert [e.key_id for e in _events(other)] == [other_source.source_id]
    # And the row-level security wall: in B's scope, A's rows do not exist.
    with tenant_scope(other.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ingest_event WHERE tenant_id = %s", [sources.tenant.id]
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM tenants_webhooksource")
        assert cursor.fetchone()[0] == 1


def test_body_over_1_mib_is_413(sources, deliver):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"s": "\\u0000"}', b"\xff\xfe"],
)
def test_correctly_signed_bad_bodies_are_4xx_never_5xx(sources, deliver, body):
    for kind in ("shopify", "stripe", "standard"):
        headers = {
            "shopify": shopify_headers(SHOPIFY_SECRET, body),
            "stripe": {"Stripe-Signature": stripe_header_documented(STRIPE_SECRET, body)},
            "standard": {
                "webhook-id": "m",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA",
            },
        }[kind]
        if kind == "standard" and body.isascii():
            headers = standard_headers(STANDARD_SECRET, body, "msg-bad")
        response = deliver(getattr(sources, kind), body, headers)
        assert 400 <= response.status_code < 500, (kind, body, response.content)
        assert "rid" in response.json()["error"]
    assert _events(sources.tenant) == []


def test_signed_stripe_body_that_is_no_event_is_400(sources, deliver):
    body = b'{"id": "evt_1"}'
    headers = {"Stripe-Signature": stripe_header_documented(STRIPE_SECRET, body)}
    response = deliver(sources.stripe, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_delivery"


def test_hostile_signature_headers_are_401_never_5xx(sources, deliver):
    body = encode(stripe_charge_event())
    for header in ["t=abc,v1=00", "t=1,v1=é", "v1=00", "t=" + "9" * 400 + ",v1=0", "," * 5000]:
        response = deliver(sources.stripe, body, {"Stripe-Signature": header})
        assert response.status_code == 401, (header[:20], response.content)
    for signature in ["v1", "v1,***", "v2,AAAA", "v1,AAAA " * 50]:
        headers = {"webhook-id": "m", "webhook-timestamp": str(int(time.time()))}
        response = deliver(sources.standard, body, {**headers, "webhook-signature": signature})
        assert response.status_code == 401
    response = deliver(sources.shopify, body, {"X-Shopify-Hmac-Sha256": "%%%not base64"})
    assert response.status_code == 401


def test_get_is_405(sources, deliver):
    response = deliver(sources.shopify, b"", {}, method="GET")
    assert response.status_code == 405


def test_source_rate_limit_flag_gives_429_with_retry_after(sources, deliver):
    from flags.services import flag_update

    flag_update(tenant_id=sources.tenant.id, values={"sourceRatePerSec": 1}, actor="t", via="cli")
    statuses = []
    for i in range(6):
        body = encode(shopify_order(id=i))
        headers = shopify_headers(SHOPIFY_SECRET, body, **{"X-Shopify-Event-Id": f"rl-{i}"})
        response = deliver(sources.shopify, body, headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limited"
            assert int(response["Retry-After"]) >= 1
    assert set(statuses) == {200, 429}, statuses


def test_per_source_metrics_count_deliveries_by_outcome_and_signature_failures(sources, deliver):
    from prometheus_client import REGISTRY

    labels = {
        "tenant": sources.tenant.slug,
        "kind": "shopify",
        "source": sources.shopify.source_id,
    }

    def value(name: str, **extra) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    body = encode(shopify_order())
    deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    deliver(sources.shopify, body, shopify_headers("wrong", body))
    deliveries = "codex_ingest_source_deliveries_total"
    assert value(deliveries, outcome="accepted") == 1
    assert value(deliveries, outcome="duplicate") == 1
    assert value(deliveries, outcome="unauthorized") == 1
    failures = "codex_ingest_source_signature_failures_total"
    assert value(failures, code="invalid_signature") == 1


def test_no_source_secret_reaches_a_log_line_or_an_audit_row(sources, deliver, caplog, db):
    import logging

    from codex.logconfig import JsonFormatter
    from tenants.models import AuditLog
    from tenants.scope import system_scope

    caplog.set_level(logging.DEBUG)
    secret = "whsec_never_logged_0123456789abcdef"
    info = WebhookSourceFactory(
        tenant=sources.tenant, kind="stripe", secret=secret, api_key="rk_test_nolog", actor="t"
    )
    source_rotate_secret(
        source_id=info.source_id, secret=secret + "2", overlap=timedelta(0), actor="t"
    )
    body = encode(stripe_charge_event())
    deliver(info, body, {"Stripe-Signature": stripe_header_library(secret + "2", body)})
    deliver(info, body, {"Stripe-Signature": stripe_header_library(secret, body)})
    formatter = JsonFormatter()
    lines = "\n".join(formatter.format(r) for r in caplog.records)
    with system_scope("test"):
        audit = "\n".join(str((a.old, a.new)) for a in AuditLog.objects.all())
    for text in (lines, audit):
        assert secret not in text
        assert "rk_test_nolog" not in text
    assert info.source_id in lines


def test_suspended_tenant_source_is_403_and_stores_nothing(sources, deliver):
    from tenants.services.tenants import tenant_suspend

    tenant_suspend(tenant=sources.tenant, actor="t")
    body = encode(shopify_order())
    response = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended"
    assert _events(sources.tenant) == []


def test_customer_ids_become_the_events_subject_id(sources, deliver):
    body = encode(shopify_order())
    assert deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 200
    customer = encode({"id": 706405506930370084, "email": "bob@example.com"})
    headers = shopify_headers(
        SHOPIFY_SECRET,
        customer,
        **{"X-Shopify-Topic": "customers/create", "X-Shopify-Event-Id": "cust-1"},
    )
    assert deliver(sources.shopify, customer, headers).status_code == 200
    charge = encode(stripe_charge_event())
    headers = {"Stripe-Signature": stripe_header_library(STRIPE_SECRET, charge)}
    assert deliver(sources.stripe, charge, headers).status_code == 200
    body = encode({"type": "note.added"})
    assert (
        deliver(sources.standard, body, standard_headers(STANDARD_SECRET, body, "m-s")).status_code
        == 200
    )
    subjects = {e.type: e.subject_id for e in _events(sources.tenant)}
    assert subjects == {
        "shopify.orders.create": "115310627314723954",
        "shopify.customers.create": "706405506930370084",
        "stripe.charge.succeeded": "cus_NffrFeUfNV2Hib",
        "note.added": None,
    }
