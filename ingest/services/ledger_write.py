"""The ledger write: one function call, one round trip, one implicit transaction."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from tenants.scope import tenant_scope

# The write is one PL/pgSQL function (migration ingest 0008 holds its text and why): in the
# tenant's scope it claims the keys in the idempotency table, writes the ledger rows of the keys
# it claimed and returns the earlier rows of the keys it did not claim, in one statement whose
# plan each server session keeps (planning it per call cost PostgreSQL more than running it for
# one event). One statement with its parameters bound server-side: in autocommit (every
# request) one round trip, one implicit transaction, one commit.
FUNCTION_NAME = "codex_ledger_write"
_CALL_SQL = f"SELECT out_id, out_key, out_fingerprint FROM {FUNCTION_NAME}(%s, %s::uuid, %s)"

_EXISTING_SQL = """
SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
WHERE tenant_id = %s::uuid AND idempotency_key = ANY(%s::text[])
"""


def write(rows: str, tenant_id: str, key_id: str) -> list[tuple]:
    """Store `rows` (JSON array): (id, key, None) if stored now, else (id, key, fingerprint)."""
    # Looked up once: each `connection.x` goes through Django's proxy and an asgiref Local
    # (about a dozen per request were 3% of a single event's CPU).
    db = connections[DEFAULT_DB_ALIAS]
    # Inside a caller's transaction a savepoint keeps a failure from breaking it.
    with (
        transaction.atomic() if db.in_atomic_block else nullcontext(),
        _cursor(db) as cursor,
    ):
        cursor.execute(_CALL_SQL, [rows, tenant_id, key_id])
        return cursor.fetchall()


def existing(keys: list[str], tenant_id: str) -> list[tuple]:
    """(event id, key, fingerprint) of these keys, in a new statement (a fresh snapshot).

    The rare path (keys a concurrent request committed while the write waited on them): the
    tenant's scope as every other tenant read opens it.
    """
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(_EXISTING_SQL, [tenant_id, keys])
        return cursor.fetchall()


@contextmanager
def _cursor(db):
    """psycopg's own server-side-binding cursor on Django's connection, errors made Django's.

    Django's cursor wrapper (thread and async checks, two error-wrapping layers, the debug hook)
    cost about 5% of a single-event request's CPU. Where queries are being logged (DEBUG, a test
    capturing them) Django's cursor is used, so they see the statement like any other. Binding
    server-side sends the parameters apart from the statement instead of quoting them into it in
    Python (about 5% of a 100-event batch's CPU for its rows document).
    """
    if db.queries_logged:
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        yield cursor
