"""Fixtures for the flags tests: a clean flags cache, and helpers to read /config signed."""

from __future__ import annotations

import pytest

from tests.signing import django_headers


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
    from tests.signing import sign_headers

    def get(key, **extra):
        headers = django_headers(
            sign_headers(key.key_id, key.secret, b"", method="GET", path="/config")
        )
        headers.update(extra)
        return client.get("/config", **headers)

    return get


@pytest.fixture
def commit_hooks(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (cache invalidation) inside a `db` test's transaction."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def make_client(request, tmp_path):
    """Build SDK clients with fast test timings; all are closed at teardown.

    A test module may set SDK_TIMEOUT for a longer per-request timeout.
    """
    from codex_sdk import Client

    clients: list[Client] = []

    def make(base_url: str, key, **overrides) -> Client:
        kwargs = {
            "queue_path": tmp_path / f"queue-{len(clients)}.sqlite3",
            "timeout": getattr(request.module, "SDK_TIMEOUT", 3.0),
            "backoff_base": 0.05,
            "backoff_max": 0.2,
            "config_refresh_sec": 0.5,
        }
        kwargs.update(overrides)
        client = Client(base_url, key.key_id, key.secret, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0, flush=False)
