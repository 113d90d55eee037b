"""Long-lived key and flag caches, invalidated by the cache-version poll (tenants.cachesync).

A resolved key outlives the short TTL while the poll works; any committed write that changes it
(whatever path made it: the triggers record it) reaches the cache within about a second; with the
poll cut, the short TTL still bounds a revocation to well under 5 s, across processes.
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flags.selectors import effective_flags_cached
from tenants import cachesync
from tenants.selectors import signing_key_resolve_cached
from tests.dbutil import database_url, owner_connect
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import encode, make_event, wait_until
from tests.procs import gunicorn_server
from tests.signing import sign_headers


def _version(scope: str) -> int:
    with owner_connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT version FROM tenants_cacheversion WHERE scope = %s", [scope]
        ).fetchone()
    return row[0] if row else 0


def _sql(statement: str, params=()) -> None:
    with owner_connect(autocommit=True) as conn:
        conn.execute(statement, params)


def test_writes_that_change_a_cached_answer_bump_the_tenants_version_and_others_do_not(
    transactional_db,
):
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    scope = str(tenant.id)
    start = _version(scope)
    assert start >= 2  # the tenant's and the key's inserts
    # Informational columns a request updates do not invalidate anything.
    _sql("UPDATE tenants_signingkey SET last_used_at = now() WHERE key_id = %s", [key.key_id])
    _sql("UPDATE tenants_tenant SET name = 'renamed' WHERE id = %s", [tenant.id])
    assert _version(scope) == start
    # A raw revocation (no service, no cache call) is recorded all the same.
    _sql("UPDATE tenants_signingkey SET status = 'revoked' WHERE key_id = %s", [key.key_id])
    assert _version(scope) == start + 1
    _sql("UPDATE tenants_tenant SET status = 'suspended' WHERE id = %s", [tenant.id])
    assert _version(scope) == start + 2
    _sql(
        "INSERT INTO flags_tenantflag (tenant_id, key, value, updated_at, updated_by)"
        " VALUES (%s, 'retryCap', '3', now(), 't')",
        [tenant.id],
    )
    assert _version(scope) == start + 3
    before = _version("*")
    _sql(
        "INSERT INTO flags_globalflag (key, value, updated_at, updated_by)"
        " VALUES ('retryCap', '4', now(), 't')"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    assert _version("*") == before + 1


@pytest.fixture
def long_lived(settings):
    """Entries outlive a short TTL of 0.2 s while the poll works (600 s at most)."""
    settings.CODEX_KEY_CACHE_TTL_S = 0.2
    settings.CODEX_CACHE_LONG_TTL_S = 600


def _cached_key():
    """A new tenant's key, resolved and cached after the poll consumed its creation's bump."""
    key = SigningKeyFactory(tenant=TenantFactory())
    cachesync.forget()  # the next poll takes the creation in: none after it finds anything new
    assert signing_key_resolve_cached(key.key_id).secrets
    return key


def _assert_refused_soon(key, changed: float) -> None:
    """The cached key is refused within 2.5 s of `changed` (monotonic): one poll and change."""
    wait_until(lambda: signing_key_resolve_cached(key.key_id).revoked, timeout=5, message="revoked")
    assert time.monotonic() - changed < 2.5


def test_a_cached_key_outlives_the_short_ttl_and_goes_at_the_next_poll_after_a_change(
    transactional_db, long_lived
):
    key = _cached_key()
    time.sleep(0.5)  # deliberately past the short TTL: the entry must still answer
    with CaptureQueriesContext(connection) as queries:
        assert signing_key_resolve_cached(key.key_id).secrets
    assert not any("tenants_signingkey" in q["sql"] for q in queries.captured_queries)
    # Revoked by another connection, bypassing every service: seen at the next poll (~1 s).
    _sql("UPDATE tenants_signingkey SET status = 'revoked' WHERE key_id = %s", [key.key_id])
    _assert_refused_soon(key, time.monotonic())


def test_a_cached_flag_goes_at_the_next_poll_after_a_change_elsewhere(transactional_db, long_lived):
    tenant = TenantFactory()
    assert effective_flags_cached(tenant_id=tenant.id)["retryCap"] != 7
    _sql(
        "INSERT INTO flags_tenantflag (tenant_id, key, value, updated_at, updated_by)"
        " VALUES (%s, 'retryCap', '7', now(), 't')",
        [tenant.id],
    )
    wait_until(
        lambda: effective_flags_cached(tenant_id=tenant.id)["retryCap"] == 7,
        timeout=5,
        message="the new retryCap",
    )


def test_with_the_poll_failing_entries_live_the_short_ttl_only(transactional_db, settings):
    settings.CODEX_KEY_CACHE_TTL_S = 0.5
    settings.CODEX_CACHE_LONG_TTL_S = 600
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    assert signing_key_resolve_cached(key.key_id).secrets
    with owner_connect() as locker:
        # A migration-style lock on the versions table: every poll times out (200 ms).
        locker.execute("LOCK TABLE tenants_cacheversion IN ACCESS EXCLUSIVE MODE")
        wait_until(lambda: not cachesync.healthy(), timeout=6, interval=0.1, message="poll failing")
        with CaptureQueriesContext(connection) as queries:
            signing_key_resolve_cached(key.key_id)
        # Older than the short TTL and unconfirmed: looked up again.
        assert any("tenants_signingkey" in q["sql"] for q in queries.captured_queries)
        locker.rollback()
    wait_until(lambda: (cachesync.sync(), cachesync.healthy())[1], timeout=5, message="recovered")


def _post(url: str, key) -> int:
    body = encode(make_event())
    headers = sign_headers(key.key_id, key.secret, body) | {"Content-Type": "application/json"}
    return httpx.post(url + "/v1/events", content=body, headers=headers, timeout=10).status_code


@pytest.mark.slow
def test_with_the_channel_cut_a_revocation_still_reaches_every_process_within_5_s(transactional_db):
    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)
    env = {"DATABASE_URL": database_url(), "CODEX_CACHE_LONG_TTL_S": "600"}
    with gunicorn_server(env, workers=2) as (url, _proc):
        for _ in range(6):  # both workers resolve and cache the key
            assert _post(url, key) == 202
        with owner_connect() as locker, owner_connect() as writer:
            # The channel is cut: no process can read the versions table...
            locker.execute("LOCK TABLE tenants_cacheversion IN ACCESS EXCLUSIVE MODE")
            # ...and the revocation is not even recorded there (its trigger is off for this
            # transaction): only the fallback to the short TTL can make the servers see it.
            writer.execute(
                "ALTER TABLE tenants_signingkey DISABLE TRIGGER tenants_signingkey_cacheversion"
            )
            writer.execute(
                "UPDATE tenants_signingkey SET status = 'revoked' WHERE key_id = %s", [key.key_id]
            )
            writer.execute(
                "ALTER TABLE tenants_signingkey ENABLE TRIGGER tenants_signingkey_cacheversion"
            )
            writer.commit()
            changed = time.monotonic()
            statuses = []
            while time.monotonic() - changed < 8:
                statuses.append(_post(url, key))
                if statuses[-1] == 401 and all(_post(url, key) == 401 for _ in range(6)):
                    break
            took = time.monotonic() - changed
            locker.rollback()
        assert statuses[-1] == 401, statuses
        assert took < 5.0, f"took {took:.2f} s"


def test_a_change_committed_by_a_transaction_open_across_polls_is_still_seen(
    transactional_db, long_lived
):
    key = _cached_key()
    with owner_connect() as writer:
        # The trigger runs now; the commit comes after several polls that cannot see it.
        writer.execute(
            "UPDATE tenants_signingkey SET status = 'revoked' WHERE key_id = %s", [key.key_id]
        )
        polls = cachesync._last_ok
        wait_until(  # resolving polls when one is due
            lambda: signing_key_resolve_cached(key.key_id) and cachesync._last_ok > polls + 1.5,
            timeout=10,
            message="two polls during the open transaction",
        )
        assert signing_key_resolve_cached(key.key_id).secrets  # not committed: still good
        writer.commit()
    _assert_refused_soon(key, time.monotonic())
