"""Shared fixtures: the test database is built as the owner, tests run as the restricted role."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections

from codex.db import roles


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts with empty in-process key and flag caches (their TTLs span tests)."""
    from flags.selectors import local_flags_clear
    from tenants import keycache

    keycache.clear()
    local_flags_clear()


# The suite's owner when DATABASE_URL names a superuser: the superuser only makes this login.
SUITE_OWNER = "codex_suite_owner"


def _managed_owner_for_suite() -> None:
    """Run the suite as a managed-shaped owner (no SUPERUSER, no BYPASSRLS), as deployed.

    The embedded PostgreSQL already hands out one (codex.embedded). A DATABASE_URL that logs in
    as a superuser is used only to create that owner; the suite then migrates and runs as it.
    """
    import psycopg
    from django.conf import settings

    from codex.db import bootstrap

    db = settings.DATABASES["default"]
    login = db.get("OWNER") or db
    params = {
        "dbname": "postgres",
        "user": login["USER"] or None,
        "password": login["PASSWORD"] or None,
        "host": login["HOST"] or None,
        "port": login["PORT"] or None,
        "connect_timeout": 10,
    }
    with psycopg.connect(**params, autocommit=True) as admin:
        if not bootstrap.login_is_privileged(admin):
            return
        bootstrap.managed_owner_ensure(
            admin,
            owner=SUITE_OWNER,
            database=db["NAME"],
            password=SUITE_OWNER,  # a throwaway login on a test server
            app_role=db.get("APP_ROLE") or "codex_app",
            adopt=(f"test_{db['NAME']}",),
        )
    for settings_dict in (db, connections["default"].settings_dict):
        target = settings_dict.get("OWNER") or settings_dict
        target["USER"], target["PASSWORD"] = SUITE_OWNER, SUITE_OWNER


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Create the test database and run migrations as the owner (the app role may not)."""
    _managed_owner_for_suite()
    roles.enter_owner_mode()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After set-up, every test connection runs as the restricted application role."""
    with django_db_blocker.unblock():
        roles.leave_owner_mode()
    yield
    with django_db_blocker.unblock():
        roles.enter_owner_mode()  # dropping the test database needs the owner again
        if connections["default"].settings_dict.get("POOL_MODE") == "transaction":
            _close_pooled_server_connections()
    for conn in connections.all(initialized_only=True):
        conn.close()


def _close_pooled_server_connections() -> None:
    """PgBouncer keeps server connections to the test database open: end them so it can drop."""
    from tests.dbutil import owner_connect

    with owner_connect(autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def make_client(request, tmp_path):
    """Build SDK clients (tests.helpers.sdk_client, test timings); all are closed at teardown.

    make_client(base_url, key, **overrides); a test module may set SDK_TIMEOUT for a longer
    per-request timeout. tests/sdk binds it to its stand-in server.
    """
    from tests.helpers import sdk_client

    clients = []

    def make(base_url: str, key, **overrides):
        overrides.setdefault("queue_path", tmp_path / f"queue-{len(clients)}.sqlite3")
        if hasattr(request.module, "SDK_TIMEOUT"):
            overrides.setdefault("timeout", request.module.SDK_TIMEOUT)
        client = sdk_client(base_url, key, **overrides)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0, flush=False)


@pytest.fixture
def commit_hooks(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (cache invalidation) inside a `db` test's transaction."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def stripe_standin(monkeypatch):
    """A local HTTP server standing in for api.stripe.com (tests.stripe_standin)."""
    from tests.stripe_standin import stripe_served

    with stripe_served(monkeypatch) as state:
        yield state


@pytest.fixture
def purge_enrichment_queue(transactional_db):
    """Drop the enrichment tasks a test enqueued when no worker ran to take them."""
    yield
    from codex.celery import app

    app.control.purge()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (thread, solo pool) consuming this test run's queue on real Redis.

    Tests using it see committed data only, hence transactional_db.
    """
    from celery.contrib.testing.worker import start_worker

    from codex.celery import app

    root = logging.getLogger()
    level = root.level
    # loglevel INFO: start_worker would otherwise set the root logger to ERROR for good.
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="INFO"
    ) as worker:
        yield worker
    root.setLevel(level)


@dataclass(frozen=True)
class Signed:
    """A tenant, one of its signing keys (NewKey, clear secret) and a signer for bodies."""

    tenant: Any
    key: Any
    sign: Callable[..., dict[str, str]]


@pytest.fixture
def signed(db) -> Signed:
    """A tenant with a key, and `sign(body)` giving the headers that sign a body with it."""
    from tests.factories import SigningKeyFactory, TenantFactory
    from tests.signing import sign_headers

    tenant = TenantFactory()
    key = SigningKeyFactory(tenant=tenant)

    def sign(body: bytes, **kwargs) -> dict[str, str]:
        return sign_headers(key.key_id, key.secret, body, **kwargs)

    return Signed(tenant=tenant, key=key, sign=sign)


@pytest.fixture
def wide_live_server(transactional_db):
    """Django's threaded live server with a listen backlog for 50+ simultaneous connections.

    (pytest-django's live_server keeps Django's backlog of 10: a burst of 50 connects overflows
    it and the kernel resets connections, which is a property of the test server, not of ours.)
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer
    from django.test.testcases import LiveServerThread

    class Server(ThreadedWSGIServer):
        request_queue_size = 256

    class Thread(LiveServerThread):
        server_class = Server

    thread = Thread("127.0.0.1", StaticFilesHandler, connections_override={}, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error

    class Live:
        url = f"http://127.0.0.1:{thread.port}"

    yield Live()
    thread.terminate()
