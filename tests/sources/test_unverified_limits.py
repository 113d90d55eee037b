"""Unverified deliveries are limited per source id and client address before any lookup."""

from __future__ import annotations

import ipaddress

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flags.services import flag_update
from ingest.webhooks.guard import address_key
from tenants import keycache
from tests.helpers import SHOPIFY_SECRET
from tests.signing import django_headers
from tests.sources.webhook_signing import encode, shopify_headers, shopify_order

ATTEMPTS = 40  # well past the limits set below, so a 429 comes whatever second the run starts


@pytest.fixture
def limits(settings):
    settings.CODEX_SOURCE_UNVERIFIED_PER_SEC = 3
    settings.CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC = 5
    return settings


def _post(client, path: str, body: bytes, headers: dict, address: str):
    """POST a delivery from `address`, counting the queries it cost (the key cache emptied)."""
    keycache.clear()  # so any lookup would have to query PostgreSQL
    with CaptureQueriesContext(connection) as queries:
        response = client.generic(
            "POST",
            path,
            body,
            content_type="application/json",
            REMOTE_ADDR=address,
            **django_headers(headers),
        )
    return response, len(queries)


def _assert_limited(response, queries: int) -> None:
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["rid"] == response["X-Request-ID"]
    assert int(response["Retry-After"]) >= 1
    assert queries == 0  # no source lookup, no secret decrypt


def test_unsigned_flood_on_a_source_gets_429_before_any_lookup(client, sources, limits):
    body = encode(shopify_order())
    answers = []
    for n in range(ATTEMPTS):
        # Each from its own address: only the source's window can fill.
        answers.append(_post(client, sources.shopify.path, body, {}, f"198.51.100.{n + 1}"))
    statuses = [r.status_code for r, _ in answers]
    assert set(statuses) == {401, 429}, statuses
    assert all(q > 0 for r, q in answers if r.status_code == 401)  # a lookup each
    for response, queries in answers:
        if response.status_code == 429:
            _assert_limited(response, queries)
            assert "source id" in response.json()["error"]["message"]


def test_flood_of_unknown_ids_from_one_address_is_limited_and_others_still_deliver(
    client, sources, limits
):
    flooder = "203.0.113.66"
    answers = []
    for n in range(ATTEMPTS):
        fake = f"/v1/sources/src_{sources.tenant.id.hex}_{n:024x}/webhooks"
        answers.append(_post(client, fake, b"{}", {}, flooder))
    statuses = [r.status_code for r, _ in answers]
    assert set(statuses) == {404, 429}, statuses
    limited = [(r, q) for r, q in answers if r.status_code == 429]
    for response, queries in limited:
        _assert_limited(response, queries)
        assert "address" in response.json()["error"]["message"]
    # Another address delivers to the real source, signed: accepted at once.
    body = encode(shopify_order())
    response, _ = _post(
        client, sources.shopify.path, body, shopify_headers(SHOPIFY_SECRET, body), "192.0.2.10"
    )
    assert response.status_code == 200, response.content


def test_signed_deliveries_never_count_against_the_unverified_limits(client, sources, limits):
    flag_update(
        tenant_id=sources.tenant.id, values={"sourceRatePerSec": 100_000}, actor="t", via="cli"
    )
    for n in range(ATTEMPTS):
        body = encode(shopify_order(id=n))
        headers = shopify_headers(SHOPIFY_SECRET, body)
        response, _ = _post(client, sources.shopify.path, body, headers, "192.0.2.20")
        assert response.status_code == 200, (n, response.content)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("", "unknown"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_clients_by_their_64(address, key):
    assert address_key(address) == key


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_window(client, sources, limits):
    limits.CODEX_TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.1/32"),)
    proxy = "10.0.0.1"

    def via_proxy(path: str, body: bytes, headers: dict, forwarded_for: str):
        return _post(client, path, body, {**headers, "X-Forwarded-For": forwarded_for}, proxy)

    statuses = []
    for n in range(ATTEMPTS):
        fake = f"/v1/sources/src_{sources.tenant.id.hex}_{n:024x}/webhooks"
        statuses.append(via_proxy(fake, b"{}", {}, "192.0.2.123")[0].status_code)
    assert set(statuses) == {404, 429}, statuses
    # Another client behind the same proxy is not the flooder.
    body = encode(shopify_order())
    response, _ = via_proxy(
        sources.shopify.path, body, shopify_headers(SHOPIFY_SECRET, body), "198.51.100.77"
    )
    assert response.status_code == 200, response.content
