"""Fixtures for the tenants tests: an owner connection and a superuser admin client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from tests.dbutil import owner_connect
from tests.helpers import staff_client

# test_pooling.py needs PgBouncer in front (CODEX_DB_POOL_MODE=transaction): `make test` runs it
# in its pooled pass (scripts/pgbouncer_run.py), never in the direct one.
if os.environ.get("CODEX_DB_POOL_MODE") != "transaction":
    collect_ignore = ["test_pooling.py"]


@pytest.fixture
def owner_connection(transactional_db) -> Iterator[psycopg.Connection]:
    """A separate connection to the test database as the owner (no SET ROLE): sees real rows."""
    conn = owner_connect(autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def superuser_client(db, client):
    """The Django test client logged in as a superuser operator (tests.helpers.staff_client)."""
    return staff_client(superuser=True, client=client, username="operator")
