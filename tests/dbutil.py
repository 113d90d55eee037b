"""Test helper: the URL of the test database, for subprocesses (gunicorn, manage.py) to use."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    """A postgres:// URL for the database this test run uses (TCP or the embedded socket)."""
    s = connection.settings_dict
    user = quote(s["USER"] or "")
    password = f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else ""
    host = s["HOST"] or ""
    if host.startswith("/"):  # the embedded server listens on a unix socket directory
        return f"postgresql://{user}{password}@/{s['NAME']}?host={quote(host)}"
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{s['NAME']}"


def owner_connect(*, autocommit: bool = False):
    """A separate psycopg connection to the test database as the owner, in a system scope.

    The owner is no superuser: forced row-level security applies to it, so the connection names
    its scope (a session setting, this connection only) to see every tenant's rows.
    """
    import psycopg

    s = connection.settings_dict
    login = s.get("OWNER") or s  # behind PgBouncer the service logs in as the app role
    return psycopg.connect(
        dbname=s["NAME"],
        user=login["USER"] or None,
        password=login["PASSWORD"] or None,
        host=login["HOST"] or None,
        port=login["PORT"] or None,
        autocommit=autocommit,
        options="-c app.system_scope=tests-owner",
    )
