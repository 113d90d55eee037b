"""Tenant scopes through a transaction-pooling PgBouncer: nothing leaks between pooled clients.

Runs in the pooled pass of `make test` (scripts/pgbouncer_run.py), where DATABASE_URL is PgBouncer
in transaction mode logging in as the app role; `<test db>_pool1` is a pool of exactly one server
connection, so two Django connections (two clients) take turns on the same PostgreSQL session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from codex.db.backend.base import DatabaseWrapper
from tenants.models import Device
from tenants.scope import tenant_scope
from tests.factories import DeviceFactory, TenantFactory


def _client() -> DatabaseWrapper:
    """A separate Django connection to the one-server-connection pool, as the service opens it."""
    base = connections["default"].settings_dict
    return DatabaseWrapper({**base, "NAME": f"{base['NAME']}_pool1"}, alias="default")


@contextmanager
def _as(client: DatabaseWrapper) -> Iterator[None]:
    """Make `client` this thread's default connection (what tenant_scope and the ORM use)."""
    original = connections["default"]
    connections["default"] = client
    try:
        yield
    finally:
        connections["default"] = original


@pytest.fixture
def two_tenants(transactional_db):
    tenants = []
    for slug in ("alpha", "bravo"):
        tenant = TenantFactory(slug=slug)
        DeviceFactory(tenant=tenant, name="front")
        tenants.append(tenant)
    return tenants


@pytest.fixture
def clients() -> Iterator[tuple[DatabaseWrapper, DatabaseWrapper]]:
    pair = (_client(), _client())
    yield pair
    for client in pair:
        client.close()


def _session(cursor) -> tuple[int, str, str, str]:
    cursor.execute(
        "SELECT pg_backend_pid(), current_user, session_user,"
        " coalesce(current_setting('app.tenant_id', true), '')"
    )
    return cursor.fetchone()


def test_pooled_two_tenants_interleaved_on_one_server_connection_each_see_only_their_rows(
    two_tenants, clients
):
    alpha, bravo = two_tenants
    pids = set()
    for _ in range(10):
        for client, tenant in zip(clients, (alpha, bravo), strict=True):
            with _as(client):
                with tenant_scope(tenant.id), connection.cursor() as cursor:
                    pid, current, login, scoped = _session(cursor)
                    seen = set(Device.objects.values_list("tenant_id", flat=True))
                assert (current, login, scoped) == ("codex_app", "codex_app", str(tenant.id))
                assert seen == {tenant.id}
                pids.add(pid)
                # Autocommit, no scope: the scope ended with its commit, on this very session.
                with connection.cursor() as cursor:
                    pid, _, _, scoped = _session(cursor)
                assert scoped == ""
                assert Device.objects.count() == 0  # fail closed
                pids.add(pid)
    # Both clients, 40 transactions, one PostgreSQL session: the interleaving really happened.
    assert len(pids) == 1, pids


def test_pooled_scope_rolled_back_by_an_error_does_not_reach_the_next_client(two_tenants, clients):
    alpha, bravo = two_tenants
    first, second = clients
    with (
        _as(first),
        pytest.raises(DatabaseError, match="division by zero"),
        tenant_scope(alpha.id),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT 1 / 0")
    with _as(second):
        with connection.cursor() as cursor:
            assert _session(cursor)[3] == ""
        with tenant_scope(bravo.id):
            assert set(Device.objects.values_list("tenant_id", flat=True)) == {bravo.id}


def test_pooled_a_session_setting_would_leak_which_is_why_scopes_are_transaction_local(
    two_tenants, clients
):
    # The canary: the test set-up can see a leak when there is one (a session-level set_config,
    # which the code never does, crosses from one client to the other on the shared session).
    alpha, _ = two_tenants
    first, second = clients
    with _as(first), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.tenant_id', %s, false)", [str(alpha.id)])
    try:
        with _as(second):
            assert set(Device.objects.values_list("tenant_id", flat=True)) == {alpha.id}
    finally:
        with _as(second), connection.cursor() as cursor:
            cursor.execute("RESET app.tenant_id")
    with _as(first):
        assert Device.objects.count() == 0


def test_pooled_login_is_the_app_role_with_its_time_limits_and_no_way_back_to_the_owner(
    transactional_db, clients
):
    with _as(clients[0]), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, session_user, rolsuper, rolbypassrls,"
            " current_setting('statement_timeout'), current_setting('lock_timeout')"
            " FROM pg_roles WHERE rolname = session_user"
        )
        limits = settings.DATABASES["default"]["TIME_LIMITS_MS"]
        assert cursor.fetchone() == (
            "codex_app",
            "codex_app",
            False,
            False,
            f"{limits['statement_timeout'] // 1000}s",
            f"{limits['lock_timeout'] // 1000}s",
        )
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == ("codex_app",)
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            cursor.execute("SET ROLE postgres")


def test_pooled_settings_disable_server_side_cursors_and_iterator_still_works(two_tenants):
    alpha, _ = two_tenants
    assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert connection.connection is None or connection.connection.prepare_threshold is None
    with tenant_scope(alpha.id):
        assert [d.tenant_id for d in Device.objects.all().iterator(chunk_size=1)] == [alpha.id]


def test_pooled_partition_ddl_runs_through_the_owner_login_and_the_partitions_are_protected(
    transactional_db,
):
    # The service's own DDL (the beat job creating months ahead, retention dropping them) needs
    # the owner; logged in as the app role it goes through DATABASE_OWNER_URL (owner_for_ddl).
    from datetime import date

    from ingest import partitions
    from tests.helpers import tenant_tables

    outcome = partitions.partitions_ensure(
        today=date(2031, 1, 1), since=date(2031, 1, 1), months_ahead=0
    )
    created = {"ingest_event_p203101", "events_enriched_p203101"}
    try:
        assert created <= set(outcome.created)
        with connection.cursor() as cursor:
            protected = {t["table"]: (t["rls"], t["forced"]) for t in tenant_tables(cursor)}
            assert {protected[name] for name in created} == {(True, True)}
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == ("codex_app",)  # back to the app role afterwards
    finally:
        for table in partitions.PARTITIONED_TABLES:
            partitions.partition_drop(table=table, month=date(2031, 1, 1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('ingest_event_p203101')")
        assert cursor.fetchone() == (None,)
