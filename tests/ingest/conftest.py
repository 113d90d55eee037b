"""Fixtures for the ingest tests: a signed POST."""

from __future__ import annotations

import pytest

from tests.helpers import encode
from tests.signing import django_headers


@pytest.fixture
def post_signed(client, signed):
    """POST /v1/events signed with the `signed` tenant's key through the Django test client."""
    sign = signed.sign

    def post(doc, *, content_type="application/json", headers=None, sign_with=None):
        body = encode(doc)
        signed_headers = (sign_with or sign)(body)
        signed_headers.update(headers or {})
        return client.generic(
            "POST", "/v1/events", body, content_type=content_type, **django_headers(signed_headers)
        )

    return post
