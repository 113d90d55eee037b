"""Idempotency from signed content only: replayed or re-labelled bodies store nothing new."""

from __future__ import annotations

import hashlib

from ingest.models import Event
from tenants.scope import tenant_scope
from tests.factories import WebhookSourceFactory
from tests.helpers import SHOPIFY_SECRET, STANDARD_SECRET
from tests.sources.webhook_signing import (
    encode,
    shopify_headers,
    shopify_order,
    standard_headers,
)


def _events(tenant) -> list[Event]:
    with tenant_scope(tenant.id):
        return list(Event.objects.filter(tenant=tenant).order_by("id"))


def _key(info, body: bytes) -> str:
    """What a Shopify delivery is keyed by: its source and the digest of the signed body."""
    return f"shopify:{info.source_id}:{hashlib.sha256(body).hexdigest()}"


def test_replayed_shopify_body_with_a_fresh_event_id_is_a_duplicate(sources, deliver):
    body = encode(shopify_order())
    first = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert first.json()["status"] == "accepted"
    # A captured body and its (body-only) signature, re-sent under new unsigned ids.
    for fresh in ("replay-1", "replay-2"):
        headers = shopify_headers(
            SHOPIFY_SECRET, body, **{"X-Shopify-Event-Id": fresh, "X-Shopify-Webhook-Id": fresh}
        )
        replay = deliver(sources.shopify, body, headers)
        assert replay.status_code == 200
        assert replay.json() == {"status": "duplicate", "id": first.json()["id"]}
    [event] = _events(sources.tenant)
    assert event.idempotency_key == _key(sources.shopify, body)


def test_same_shopify_body_relabelled_with_another_topic_or_time_stays_one_event(sources, deliver):
    body = encode(shopify_order())
    assert deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 200
    relabelled = shopify_headers(
        SHOPIFY_SECRET,
        body,
        **{
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Event-Id": "relabelled",
            "X-Shopify-Triggered-At": "2026-04-01T00:00:00Z",
        },
    )
    again = deliver(sources.shopify, body, relabelled)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    [event] = _events(sources.tenant)
    assert event.type == "shopify.orders.create"  # the first delivery stays


def test_shopify_retry_with_the_same_event_id_is_200_duplicate(sources, deliver):
    body = encode(shopify_order())
    headers = shopify_headers(SHOPIFY_SECRET, body)
    first = deliver(sources.shopify, body, headers)
    retry = deliver(sources.shopify, body, headers)
    assert retry.status_code == 200
    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
    [event] = _events(sources.tenant)
    assert event.idempotency_key == _key(sources.shopify, body)


def test_two_topics_of_one_order_with_different_bodies_are_two_events(sources, deliver):
    created = encode(shopify_order(financial_status="pending"))
    paid = encode(shopify_order(financial_status="paid", updated_at="2026-03-29T14:05:00-04:00"))
    one = shopify_headers(SHOPIFY_SECRET, created, **{"X-Shopify-Event-Id": "ev-1"})
    two = shopify_headers(
        SHOPIFY_SECRET, paid, **{"X-Shopify-Topic": "orders/paid", "X-Shopify-Event-Id": "ev-2"}
    )
    assert deliver(sources.shopify, created, one).json()["status"] == "accepted"
    assert deliver(sources.shopify, paid, two).json()["status"] == "accepted"
    stored = [(e.type, e.idempotency_key) for e in _events(sources.tenant)]
    assert stored == [
        ("shopify.orders.create", _key(sources.shopify, created)),
        ("shopify.orders.paid", _key(sources.shopify, paid)),
    ]


def test_two_standard_sources_of_one_tenant_keep_their_own_webhook_ids(sources, deliver):
    sender_b = WebhookSourceFactory(
        tenant=sources.tenant, kind="standard", secret=STANDARD_SECRET, actor="t"
    )
    body_a = encode({"type": "invoice.paid", "amount": "1.00", "currency": "EUR"})
    body_b = encode({"type": "user.created"})
    a = deliver(sources.standard, body_a, standard_headers(STANDARD_SECRET, body_a, "msg_1"))
    b = deliver(sender_b, body_b, standard_headers(STANDARD_SECRET, body_b, "msg_1"))
    assert (a.json()["status"], b.json()["status"]) == ("accepted", "accepted")
    keys = {e.key_id: e.idempotency_key for e in _events(sources.tenant)}
    assert keys == {
        sources.standard.source_id: f"standard:{sources.standard.source_id}:msg_1",
        sender_b.source_id: f"standard:{sender_b.source_id}:msg_1",
    }
    # Within one source, a webhook-id is still stored once.
    again = deliver(sender_b, body_b, standard_headers(STANDARD_SECRET, body_b, "msg_1"))
    assert again.json() == {"status": "duplicate", "id": b.json()["id"]}


def test_replays_of_a_captured_body_spend_none_of_the_sources_rate_limit(sources, deliver):
    from flags.services import flag_update

    flag_update(
        tenant_id=sources.tenant.id, values={"sourceRatePerSec": 5}, actor="test", via="cli"
    )
    body = encode(shopify_order(id=77))
    first = deliver(sources.shopify, body, shopify_headers(SHOPIFY_SECRET, body))
    assert first.json()["status"] == "accepted"
    for n in range(40):  # one captured body, replayed far past 5 a second
        headers = shopify_headers(SHOPIFY_SECRET, body, **{"X-Shopify-Event-Id": f"r{n}"})
        replay = deliver(sources.shopify, body, headers)
        assert replay.json() == {"status": "duplicate", "id": first.json()["id"]}
    # The platform's next real delivery still gets in.
    fresh = encode(shopify_order(id=78))
    answer = deliver(sources.shopify, fresh, shopify_headers(SHOPIFY_SECRET, fresh))
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "accepted"
    assert len(_events(sources.tenant)) == 2
