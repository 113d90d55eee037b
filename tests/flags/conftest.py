"""Fixtures for the flags tests: a clean flags cache, and /config read signed."""

from __future__ import annotations

import pytest

from tests.helpers import api_request


@pytest.fixture(autouse=True)
def _clean_flags_cache():
    """Tenant cache keys are per tenant id (unique per test); the global one is shared."""
    from django.core.cache import cache

    from flags import selectors

    selectors._cache_skip_until = 0.0
    cache.delete(selectors.GLOBAL_CACHE_KEY)
    yield
    selectors._cache_skip_until = 0.0
    cache.delete(selectors.GLOBAL_CACHE_KEY)


@pytest.fixture
def get_config(client):
    """GET /config through the test client, signed with (key) and an empty body."""

    def get(key, **extra):
        return api_request(client, key, "GET", "/config", **extra)

    return get
