"""A new web process warms its key and flag caches from the most recently used keys."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flags.selectors import effective_flags_cached
from ingest.cachewarm import caches_warm
from tenants import keycache
from tenants.selectors import signing_key_resolve_cached
from tenants.services.tenants import tenant_suspend
from tests.factories import SigningKeyFactory, TenantFactory, TenantFlagFactory


@pytest.mark.django_db
def test_warm_up_loads_usable_keys_and_their_flags_so_first_requests_cost_no_lookup():
    active = TenantFactory()
    key = SigningKeyFactory(tenant=active)
    TenantFlagFactory(tenant=active, key="retryCap", value=7)
    suspended = TenantFactory()
    SigningKeyFactory(tenant=suspended)
    tenant_suspend(tenant=suspended, actor="test")
    keycache.clear()

    report = caches_warm()

    assert report.keys == 1  # the suspended tenant's key is not loaded
    assert report.tenants == 1
    with CaptureQueriesContext(connection) as queries:
        resolved = signing_key_resolve_cached(key.key_id)
        flags = effective_flags_cached(tenant_id=active.id)
    assert resolved.secrets
    assert flags["retryCap"] == 7
    assert not [q for q in queries.captured_queries if "tenants_cacheversion" not in q["sql"]], [
        q["sql"] for q in queries.captured_queries
    ]


@pytest.mark.django_db
def test_warm_up_takes_the_most_recently_used_keys_first_and_stops_at_the_limit():
    tenant = TenantFactory()
    keys = [SigningKeyFactory(tenant=tenant) for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.system_scope', 'test', true);"
            " UPDATE tenants_signingkey SET last_used_at = now() - (interval '1 minute' * %s)"
            " WHERE key_id = %s",
            [0, keys[2].key_id],
        )
    keycache.clear()
    assert caches_warm(limit=1).keys == 1
    assert keycache.size() == 1
    assert keycache.get(keys[2].key_id, str(tenant.id)) is not keycache.MISSING


@pytest.mark.django_db
def test_warm_up_is_off_at_zero():
    SigningKeyFactory(tenant=TenantFactory())
    keycache.clear()
    assert caches_warm(limit=0).keys == 0
    assert keycache.size() == 0
