"""The ledger write's SQL and how it runs: one round trip, one implicit transaction."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import orjson
from django.db import connection, transaction

_INSERT_SQL = """
WITH u AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS u(k text, t text, s text, o timestamptz, p jsonb, f text, j text)
), claimed AS (
    INSERT INTO ingest_idempotency (tenant_id, idempotency_key, fingerprint, event_id, received_at)
    SELECT %(tenant)s::uuid, u.k, u.f, nextval('ingest_event_id_seq'), now() FROM u
    ORDER BY u.k
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING idempotency_key, event_id, received_at
), stored AS (
    INSERT INTO ingest_event
        (id, tenant_id, idempotency_key, type, source, occurred_at, received_at, payload,
         fingerprint, key_id, subject_id)
    SELECT c.event_id, %(tenant)s::uuid, u.k, u.t, u.s, u.o, c.received_at, u.p, u.f,
           %(key_id)s, u.j
    FROM claimed c JOIN u ON u.k = c.idempotency_key
    RETURNING id, idempotency_key
)
SELECT id, idempotency_key, NULL::text FROM stored
UNION ALL
SELECT i.event_id, i.idempotency_key, i.fingerprint FROM ingest_idempotency i
WHERE i.tenant_id = %(tenant)s::uuid
  AND i.idempotency_key = ANY(ARRAY(
      SELECT u.k FROM u WHERE NOT EXISTS (SELECT FROM claimed c WHERE c.idempotency_key = u.k)))
"""
# The rows travel as one JSON document (jsonb_to_recordset), not as six arrays: one parameter to
# quote instead of one per value, which client-side binding does in Python.
# Exactly once per (tenant, key) is the idempotency table's primary key (a partitioned ledger
# cannot carry that unique constraint): a key claimed there gets its event id from the ledger's
# sequence and its ledger row in the same statement; a key already there gets neither.
# Keys are claimed in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.
# The same statement answers for the keys it did not claim (fingerprint not NULL), looking up
# only those: a batch of new keys probes nothing more (a SELECT of every key cost about 0.8 ms
# of PostgreSQL per 100-event batch). The data-modifying CTEs cannot see each other's rows, so
# that lookup sees exactly the keys stored before this statement's snapshot. A key that a
# concurrent request committed after it (the INSERT waited on it, then skipped it) is in
# neither half: existing(), a new statement with a fresh snapshot, finds those.
# Not prepared: a prepared statement's generic plan is made once, and one made while the
# idempotency table was empty (a new database, its first minute) kept a sequential scan for the
# lookup of unclaimed keys: 10 -> 45 ms per 100-event batch as the table grew to 60,000 rows
# (docs/performance.md). Planned per call, the plan follows the table; planning costs
# PostgreSQL about 0.16 ms per call.

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


_WRITE = {nested: _scoped(_INSERT_SQL, nested) for nested in (False, True)}
_EXISTING = {nested: _scoped(_EXISTING_SQL, nested) for nested in (False, True)}


def write(rows: str, tenant_id: str, key_id: str) -> list[tuple]:
    """Store `rows` (JSON array): (id, key, None) if stored now, else (id, key, fingerprint)."""
    return _run(_WRITE, {"rows": rows, "tenant": tenant_id, "key_id": key_id})


def existing(keys: list[str], tenant_id: str) -> list[tuple]:
    """(event id, key, fingerprint) of these keys, in a new statement (a fresh snapshot)."""
    return _run(_EXISTING, {"tenant": tenant_id, "keys": orjson.dumps(keys).decode()})


def _run(sql: dict[bool, str], params: dict) -> list[tuple]:
    """Run a scoped query string; the rows of its statement (the one after the scope)."""
    nested = connection.in_atomic_block
    # Inside a caller's transaction a savepoint keeps a failure from breaking it.
    with transaction.atomic() if nested else nullcontext(), _cursor() as cursor:
        cursor.execute(sql[nested], params)
        if nested:
            cursor.nextset()
        cursor.nextset()
        rows = cursor.fetchall()
        while cursor.nextset():
            pass
    return rows


@contextmanager
def _cursor():
    """psycopg's own cursor on Django's connection, its errors turned into Django's.

    Django's cursor wrapper (thread and async checks, two error-wrapping layers, the debug hook)
    cost about 5% of a single-event request's CPU. Where queries are being logged (DEBUG, a test
    capturing them) Django's cursor is used, so they see this statement like any other.
    """
    if connection.queries_logged:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        yield cursor
