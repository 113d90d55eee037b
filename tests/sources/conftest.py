"""Fixtures for the webhook source tests: a tenant with one source of each kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tenants.sources import source_create
from tests.signing import django_headers

SHOPIFY_SECRET = "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"
STRIPE_SECRET = "whsec_5ZWQ1bGkNsJ1q7tbSdLnqT2bm9qL1mB0"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Sources:
    tenant: object
    shopify: object
    stripe: object
    standard: object


@pytest.fixture
def sources(tenant_factory) -> Sources:
    tenant = tenant_factory()
    return Sources(
        tenant=tenant,
        shopify=source_create(tenant=tenant, kind="shopify", secret=SHOPIFY_SECRET, actor="t"),
        stripe=source_create(tenant=tenant, kind="stripe", secret=STRIPE_SECRET, actor="t"),
        standard=source_create(tenant=tenant, kind="standard", secret=STANDARD_SECRET, actor="t"),
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
