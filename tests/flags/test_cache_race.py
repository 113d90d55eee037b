"""A stale cache write racing a flag change is undone within seconds, not after the TTL."""

from __future__ import annotations

import time

from django.core.cache import cache

from flags.selectors import _tenant_from_db, effective_flags, tenant_cache_key
from flags.services import flag_update
from tests.factories import TenantFactory


def test_stale_value_written_back_after_a_change_is_deleted_again(celery_worker, db):
    tenant = TenantFactory()
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True
    # A reader misses the cache and reads PostgreSQL just before the change commits ...
    stale = _tenant_from_db(tenant.id)
    flag_update(
        tenant_id=tenant.id, values={"syncEnabled": False}, actor="test", via="cli", reason="race"
    )
    # ... and writes what it read just after the change deleted the entry.
    cache.set(tenant_cache_key(tenant.id), stale, timeout=30)
    assert effective_flags(tenant_id=tenant.id)["syncEnabled"] is True  # the race, reproduced

    deadline = time.monotonic() + 10  # the second delete comes 2 s after the change
    while effective_flags(tenant_id=tenant.id)["syncEnabled"] is not False:
        assert time.monotonic() < deadline, "the stale entry outlived the second delete"
        time.sleep(0.1)  # polling an observable condition (the cache entry)
