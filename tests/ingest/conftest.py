"""Fixtures for the ingest tests: a signed POST."""

from __future__ import annotations

import pytest

from tests.helpers import api_request, encode


@pytest.fixture
def post_signed(client, signed):
    """POST /v1/events signed with the `signed` tenant's key through the Django test client."""

    def post(doc, **kwargs):
        return api_request(client, signed.key, "POST", "/v1/events", encode(doc), **kwargs)

    return post
