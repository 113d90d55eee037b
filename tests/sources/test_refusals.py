"""Correctly signed deliveries we refuse: still a 4xx, and an ingestion warning of their source."""

from __future__ import annotations

import pytest

from ingest.models import Event, IngestWarning
from tenants.scope import tenant_scope
from tests.helpers import SHOPIFY_SECRET, STANDARD_SECRET, STRIPE_SECRET
from tests.sources.webhook_signing import (
    encode,
    shopify_headers,
    shopify_order,
    standard_headers,
    stripe_header_library,
)

DEEP = 2000  # past orjson's own nesting limit (1024): the parser refuses it
BODIES = {
    "camelcase_type": (b'{"type": "Invoice.Paid", "id": "inv_1"}', "invalid_delivery"),
    "nul_in_a_string": (b'{"type": "note.added", "note": "a\\u0000b"}', "invalid_delivery"),
    "past_the_parser_depth": (
        b'{"type": "a.b", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        "malformed_json",
    ),
    "past_the_payload_depth": (
        b'{"type": "a.b", "x": ' + b"[" * 80 + b"]" * 80 + b"}",
        "invalid_delivery",
    ),
}


def _warnings(tenant) -> list[IngestWarning]:
    with tenant_scope(tenant.id):
        return list(IngestWarning.objects.filter(tenant=tenant).order_by("id"))


def _assert_no_secret(warning: IngestWarning, *secrets: str) -> None:
    text = " ".join(
        [warning.code, warning.message, warning.item, warning.idempotency_key, warning.key_id]
    )
    for secret in secrets:
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


@pytest.mark.parametrize("case", sorted(BODIES))
def test_signed_standard_delivery_refused_for_its_content_leaves_a_warning(sources, deliver, case):
    body, code = BODIES[case]
    headers = standard_headers(STANDARD_SECRET, body, f"msg_{case}")
    response = deliver(sources.standard, body, headers)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    with tenant_scope(sources.tenant.id):
        assert not Event.objects.filter(tenant=sources.tenant).exists()
    [warning] = _warnings(sources.tenant)
    assert warning.key_id == sources.standard.source_id
    assert warning.code == code
    assert warning.request_id == response["X-Request-ID"]
    assert warning.idempotency_key == f"standard:{sources.standard.source_id}:msg_{case}"
    assert warning.item.startswith('{"type": ')
    assert len(warning.item.encode()) <= 8 * 1024  # a bounded excerpt
    _assert_no_secret(warning, STANDARD_SECRET, headers["webhook-signature"].split(",", 1)[1])


def test_signed_shopify_and_stripe_refusals_are_warnings_of_their_own_source(sources, deliver):
    order = encode(shopify_order(note="a\u0000b"))
    headers = shopify_headers(SHOPIFY_SECRET, order)
    assert deliver(sources.shopify, order, headers).status_code == 400
    no_event = b'{"id": "evt_1"}'
    stripe_headers = {"Stripe-Signature": stripe_header_library(STRIPE_SECRET, no_event)}
    assert deliver(sources.stripe, no_event, stripe_headers).status_code == 400
    shopify_warning, stripe_warning = _warnings(sources.tenant)
    assert (shopify_warning.key_id, shopify_warning.code) == (
        sources.shopify.source_id,
        "invalid_delivery",
    )
    assert shopify_warning.idempotency_key.startswith(f"shopify:{sources.shopify.source_id}:")
    assert (stripe_warning.key_id, stripe_warning.code) == (
        sources.stripe.source_id,
        "invalid_delivery",
    )
    assert stripe_warning.item == no_event.decode()
    _assert_no_secret(shopify_warning, SHOPIFY_SECRET, headers["X-Shopify-Hmac-Sha256"])
    _assert_no_secret(stripe_warning, STRIPE_SECRET)


def test_unsigned_or_wrongly_signed_deliveries_leave_no_warning(sources, deliver):
    body = BODIES["camelcase_type"][0]
    assert deliver(sources.standard, body, {}).status_code == 401
    wrong = standard_headers("whsec_" + "QUJD" * 8, body, "msg_wrong")
    assert deliver(sources.standard, body, wrong).status_code == 401
    assert _warnings(sources.tenant) == []
