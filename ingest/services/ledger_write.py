"""The ledger write: one function call, one round trip, one implicit transaction."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction

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
WHERE tenant_id = %(tenant)s::uuid
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(keys)s::jsonb)))
"""
# existing() runs as one simple-protocol query string: scope, then the statement. Outside a
# transaction PostgreSQL runs such a string as one implicit transaction, so the
# set_config(..., true) scope ends with it: nothing leaks into the pooled connection.
_SCOPE_SQL = (
    "SELECT set_config('app.tenant_id', %(tenant)s, true), set_config('app.system_scope', '', true)"
)
# Inside a caller's transaction (tests, scripts) the scope would outlive the statement: save the
# caller's scope first and put it back after.
_SCOPE_SAVE_SQL = (
    "SELECT set_config('app.prev_tenant', coalesce(current_setting('app.tenant_id', true), ''),"
    " true), set_config('app.prev_system', coalesce(current_setting('app.system_scope', true),"
    " ''), true)"
)
_SCOPE_RESTORE_SQL = (
    "SELECT set_config('app.tenant_id', current_setting('app.prev_tenant'), true),"
    " set_config('app.system_scope', current_setting('app.prev_system'), true)"
)
_EXISTING = {
    False: ";\n".join([_SCOPE_SQL, _EXISTING_SQL.strip()]),
    True: ";\n".join([_SCOPE_SAVE_SQL, _SCOPE_SQL, _EXISTING_SQL.strip(), _SCOPE_RESTORE_SQL]),
}


def write(rows: str, tenant_id: str, key_id: str) -> list[tuple]:
    """Store `rows` (JSON array): (id, key, None) if stored now, else (id, key, fingerprint)."""
    # Looked up once: each `connection.x` goes through Django's proxy and an asgiref Local
    # (about a dozen per request were 3% of a single event's CPU).
    db = connections[DEFAULT_DB_ALIAS]
    # Inside a caller's transaction a savepoint keeps a failure from breaking it.
    with (
        transaction.atomic() if db.in_atomic_block else nullcontext(),
        _cursor(db, server_binding=True) as cursor,
    ):
        cursor.execute(_CALL_SQL, [rows, tenant_id, key_id])
        return cursor.fetchall()


def existing(keys: list[str], tenant_id: str) -> list[tuple]:
    """(event id, key, fingerprint) of these keys, in a new statement (a fresh snapshot)."""
    db = connections[DEFAULT_DB_ALIAS]
    nested = db.in_atomic_block
    params = {"tenant": tenant_id, "keys": orjson.dumps(keys).decode()}
    with transaction.atomic() if nested else nullcontext(), _cursor(db) as cursor:
        cursor.execute(_EXISTING[nested], params)
        if nested:
            cursor.nextset()  # past the save
        cursor.nextset()  # past the scope
        rows = cursor.fetchall()
        while cursor.nextset():
            pass
    return rows


@contextmanager
def _cursor(db, *, server_binding: bool = False):
    """psycopg's own cursor on Django's connection, its errors turned into Django's.

    Django's cursor wrapper (thread and async checks, two error-wrapping layers, the debug hook)
    cost about 5% of a single-event request's CPU. Where queries are being logged (DEBUG, a test
    capturing them) Django's cursor is used, so they see these statements like any other.
    `server_binding`: parameters sent apart from the (single) statement, not quoted into it in
    Python (about 5% of a 100-event batch's CPU for its rows document).
    """
    if db.queries_logged:
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    raw = db.connection
    cursor = psycopg.Cursor(raw) if server_binding else raw.cursor()
    with db.wrap_database_errors, cursor:
        yield cursor
