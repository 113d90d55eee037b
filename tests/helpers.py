"""Helpers the tests share: plain functions and constants (fixtures stay in conftest.py).

The test kit: rows come from tests.factories (one factory per model); waiting is wait_until (the
one polling helper); each surface has one client builder: api_request (the signed API through the
Django test client), staff_client (the admin), sdk_client (codex_sdk; the make_client fixture
closes what it builds); restricted_cursor is a cursor checked to run as the application role.
Test modules import these directly; conftest.py modules define only fixtures pytest needs.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime

_seq = itertools.count(1)

# --- events ----------------------------------------------------------------------------------


def make_event(key: str | None = None, **fields) -> dict:
    """A valid event document; fields override."""
    doc = {
        "idempotency_key": key or f"k-{next(_seq)}",
        "type": "sale.completed",
        "occurred_at": "2026-01-15T10:30:00Z",
        "source": "pos",
        "payload": {"amount": "12.34", "currency": "EUR", "store": "S1"},
    }
    doc.update(fields)
    return doc


def encode(doc) -> bytes:
    """A document as the request body bytes (bytes pass through)."""
    return doc if isinstance(doc, bytes) else json.dumps(doc).encode()


def wait_until(
    predicate,
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
    ignoring: tuple[type[BaseException], ...] = (),
):
    """Poll an observable condition until it is truthy and return its value (no blind sleeps).

    At the deadline, fail with an AssertionError naming `message` and the last answer. Exceptions
    of the types in `ignoring` (a server not up yet) count as "not yet". The one polling helper
    of the suite: to know how long it took, read time.monotonic() around it.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignoring as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}: {last!r}")
        time.sleep(interval)


def noon(day: date) -> datetime:
    """12:00 UTC of a day (well inside its reconcile window)."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


# --- row-level security ----------------------------------------------------------------------

# Tables RLS protects: every public table with a tenant_id column, plus tenants_tenant (by id).
CATALOGUE_SQL = """
SELECT c.oid, c.relname, a.attname, a.attnum, a.attnotnull,
       c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND (a.attname = 'tenant_id' OR (c.relname = 'tenants_tenant' AND a.attname = 'id'))
ORDER BY c.relname
"""


def assert_restricted_role(cursor) -> None:
    """The connection runs as a role that RLS applies to: no SUPERUSER, no BYPASSRLS."""
    cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert cursor.fetchone() == (False, False)


@contextmanager
def logging_records_kept():
    """Put the logging module's record switches back after the block.

    codex.logconfig.records_lean (run by importing codex.wsgi) turns them off process-wide; the
    rest of the suite keeps the usual records.
    """
    import logging

    names = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved = {name: getattr(logging, name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)


@contextmanager
def restricted_cursor():
    """A cursor on the test's connection, checked to be the restricted application role."""
    from django.db import connection

    with connection.cursor() as cursor:
        assert_restricted_role(cursor)
        yield cursor


def tenant_tables(cursor) -> list[dict]:
    """Every RLS-protected table, as dicts (name, column, attnum, notnull, rls, forced)."""
    cursor.execute(CATALOGUE_SQL)
    return [
        {
            "oid": oid,
            "table": name,
            "column": column,
            "attnum": attnum,
            "notnull": notnull,
            "rls": rls,
            "forced": forced,
        }
        for oid, name, column, attnum, notnull, rls, forced in cursor.fetchall()
    ]


# --- webhook sources -------------------------------------------------------------------------

SHOPIFY_SECRET = "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"
STRIPE_SECRET = "whsec_5ZWQ1bGkNsJ1q7tbSdLnqT2bm9qL1mB0"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCE_SECRETS = {"shopify": SHOPIFY_SECRET, "stripe": STRIPE_SECRET, "standard": STANDARD_SECRET}


# --- metrics ---------------------------------------------------------------------------------

_BUMP = """
import sys
from prometheus_client import Counter
c = Counter("codex_test_bumps_total", "bumps", ["kind"])
c.labels(kind=sys.argv[1]).inc(int(sys.argv[2]))
"""


def bump_metric_in_process(directory, kind: str, times: int) -> None:
    """Count codex_test_bumps_total{kind} `times` in a separate process writing to `directory`."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", _BUMP, kind, str(times)], env=env, check=True)


# --- SDK against a live server ---------------------------------------------------------------

SDK_INTERVAL = 5  # minIntervalSec for the live SDK tests: the smallest the flag allows


def set_flags(tenant, **values) -> None:
    """Set a tenant's flags through flags.services (history, cache invalidation)."""
    from flags.services import flag_update

    flag_update(tenant_id=tenant.id, values=values, actor="sdk-live-test", via="api")


def stored_keys(tenant) -> list[str]:
    """The idempotency keys of the tenant's ledger rows."""
    from ingest.models import Event
    from tenants.scope import tenant_scope

    with tenant_scope(tenant.id):
        return list(
            Event.objects.filter(tenant_id=tenant.id).values_list("idempotency_key", flat=True)
        )


# --- client builders: one per surface (signed API, admin, SDK) -------------------------------


def api_request(client, key, method: str, path: str, body: bytes = b"", **kwargs):
    """A request to the signed API through the Django test client, signed with `key`.

    `key` has key_id and secret (tenants.services.keys.NewKey); `sign_with(body)` replaces the
    signer, `headers` are added after signing, `content_type` defaults to JSON.
    """
    from tests.signing import django_headers, sign_headers

    sign_with = kwargs.pop("sign_with", None)
    extra = kwargs.pop("headers", None) or {}
    content_type = kwargs.pop("content_type", "application/json")
    if sign_with is None:
        signed = sign_headers(key.key_id, key.secret, body, method=method, path=path)
    else:
        signed = sign_with(body)
    signed.update(extra)
    return client.generic(
        method, path, body, content_type=content_type, **django_headers(signed), **kwargs
    )


def staff_client(*perms: str, superuser: bool = False, client=None, **user_fields):
    """An admin client logged in as a new staff user holding exactly `perms` ("app.codename").

    superuser=True for an operator with every right; `client` to log in an existing test client.
    The user is on `client.user`.
    """
    from django.contrib.auth.models import Permission
    from django.test import Client

    from tests.factories import UserFactory

    user = UserFactory(is_superuser=superuser, **user_fields)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = client or Client()
    client.force_login(user)
    client.user = user
    return client


# SDK client timings for tests against the live server: quick retries, quick config refresh.
SDK_TEST_TIMINGS = {
    "timeout": 3.0,
    "backoff_base": 0.05,
    "backoff_max": 0.2,
    "config_refresh_sec": 0.5,
}


def sdk_client(base_url: str, key, *, queue_path, **overrides):
    """A codex_sdk Client signing with `key` (key_id, secret), test timings unless overridden.

    The caller closes it (the make_client fixture does, at teardown).
    """
    from codex_sdk import Client

    return Client(
        base_url, key.key_id, key.secret, queue_path=queue_path, **(SDK_TEST_TIMINGS | overrides)
    )


# --- real browser ----------------------------------------------------------------------------


@contextmanager
def chromium(*extra_args: str):
    """Headless Chromium through chromedriver (Debian's), in a throwaway profile; skips loudly.

    `make test` installs both (scripts/ensure_browser.sh); elsewhere the test skips with a message.
    """
    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip(
            "REAL-BROWSER TEST SKIPPED: chromium and/or chromedriver not found on PATH. "
            "Run scripts/ensure_browser.sh as root (apt-get install chromium chromium-driver)."
        )
    profile = tempfile.mkdtemp(prefix="codex-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        *extra_args,
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
