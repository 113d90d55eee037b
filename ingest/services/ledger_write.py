"""The ledger write: one function call, one round trip, one implicit transaction."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import orjson
from django.db import DEFAULT_DB_ALIAS, connections, transaction

# The write is one PL/pgSQL function (migration ingest 0008 holds its text and why): it claims
# the keys in the idempotency table, writes the ledger rows of the keys it claimed and returns
# the earlier rows of the keys it did not claim, in one statement whose plan each server session
# keeps (planning it per call cost PostgreSQL more than running it for one event).
FUNCTION_NAME = "codex_ledger_write"
_CALL_SQL = f"SELECT * FROM {FUNCTION_NAME}(%(rows)s, %(tenant)s::uuid, %(key_id)s)"

_EXISTING_SQL = """
SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
WHERE tenant_id = %(tenant)s::uuid
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(keys)s::jsonb)))
"""

# Run as one simple-protocol query string: scope, then the statement. Outside a transaction
# (every request: autocommit) PostgreSQL runs such a string as one implicit transaction, so it is
# one round trip and one commit, and the set_config(..., true) scope ends with it: nothing leaks
# into the pooled connection and nothing needs restoring.
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


def _scoped(sql: str, nested: bool) -> str:
    """`sql` run in the tenant's scope, as one query string (see _SCOPE_SQL)."""
    if nested:
        return ";\n".join([_SCOPE_SAVE_SQL, _SCOPE_SQL, sql.strip(), _SCOPE_RESTORE_SQL])
    return ";\n".join([_SCOPE_SQL, sql.strip()])


_WRITE = {nested: _scoped(_CALL_SQL, nested) for nested in (False, True)}
_EXISTING = {nested: _scoped(_EXISTING_SQL, nested) for nested in (False, True)}


def write(rows: str, tenant_id: str, key_id: str) -> list[tuple]:
    """Store `rows` (JSON array): (id, key, None) if stored now, else (id, key, fingerprint)."""
    params = {"rows": rows, "tenant": tenant_id, "key_id": key_id}
    return _run(connections[DEFAULT_DB_ALIAS], _WRITE, params)


def existing(keys: list[str], tenant_id: str) -> list[tuple]:
    """(event id, key, fingerprint) of these keys, in a new statement (a fresh snapshot)."""
    params = {"tenant": tenant_id, "keys": orjson.dumps(keys).decode()}
    return _run(connections[DEFAULT_DB_ALIAS], _EXISTING, params)


def _run(db, sql: dict[bool, str], params: dict) -> list[tuple]:
    """Run a scoped query string; the rows of its statement (the one after the scope)."""
    # `db` looked up once by the caller: each `connection.x` goes through Django's proxy and an
    # asgiref Local (about a dozen per request were 3% of a single event's CPU).
    nested = db.in_atomic_block
    # Inside a caller's transaction a savepoint keeps a failure from breaking it.
    with transaction.atomic() if nested else nullcontext(), _cursor(db) as cursor:
        cursor.execute(sql[nested], params)
        if nested:
            cursor.nextset()
        cursor.nextset()
        rows = cursor.fetchall()
        while cursor.nextset():
            pass
    return rows


@contextmanager
def _cursor(db):
    """psycopg's own cursor on Django's connection, its errors turned into Django's.

    Django's cursor wrapper (thread and async checks, two error-wrapping layers, the debug hook)
    cost about 5% of a single-event request's CPU. Where queries are being logged (DEBUG, a test
    capturing them) Django's cursor is used, so they see this statement like any other.
    """
    if db.queries_logged:
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    with db.wrap_database_errors, db.connection.cursor() as cursor:
        yield cursor
