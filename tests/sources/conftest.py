"""Fixtures for the webhook source tests: a tenant with one source of each kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import TenantFactory, WebhookSourceFactory
from tests.signing import django_headers


@dataclass
class Sources:
    tenant: object
    shopify: object
    stripe: object
    standard: object


@pytest.fixture(autouse=True)
def _unverified_limits_out_of_reach(settings):
    """Limits on unverified deliveries out of reach (test_unverified_limits sets its own)."""
    # Every test-client delivery comes from 127.0.0.1, within the same seconds.
    settings.CODEX_SOURCE_UNVERIFIED_PER_SEC = 100_000
    settings.CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC = 100_000


@pytest.fixture
def sources(db) -> Sources:
    """A tenant with one source of each kind (each kind's test secret, tests.helpers)."""
    tenant = TenantFactory()
    return Sources(
        tenant=tenant,
        shopify=WebhookSourceFactory(tenant=tenant, kind="shopify"),
        stripe=WebhookSourceFactory(tenant=tenant, kind="stripe"),
        standard=WebhookSourceFactory(tenant=tenant, kind="standard"),
    )


@pytest.fixture
def deliver(client):
    """POST a delivery to a source through the Django test client."""

    def post(info_or_path, body: bytes, headers: dict[str, str], **kwargs):
        path = info_or_path if isinstance(info_or_path, str) else info_or_path.path
        return client.generic(
            kwargs.pop("method", "POST"),
            path,
            body,
            content_type="application/json",
            **django_headers(headers),
        )

    return post
