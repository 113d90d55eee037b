"""The ledger write's SQL and how it runs: one round trip, a prepared plan where it can."""

from __future__ import annotations

import logging
import weakref
from contextlib import contextmanager, nullcontext

import orjson
from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connections, transaction

logger = logging.getLogger(__name__)

_INSERT_SQL = """
WITH u AS (
    SELECT * FROM jsonb_to_recordset({rows}::jsonb)
        AS u(k text, t text, s text, o timestamptz, p jsonb, f text, j text)
), claimed AS (
    INSERT INTO ingest_idempotency (tenant_id, idempotency_key, fingerprint, event_id, received_at)
    SELECT {tenant}::uuid, u.k, u.f, nextval('ingest_event_id_seq'), now() FROM u
    ORDER BY u.k
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING idempotency_key, event_id, received_at
), stored AS (
    INSERT INTO ingest_event
        (id, tenant_id, idempotency_key, type, source, occurred_at, received_at, payload,
         fingerprint, key_id, subject_id)
    SELECT c.event_id, {tenant}::uuid, u.k, u.t, u.s, u.o, c.received_at, u.p, u.f,
           {key_id}, u.j
    FROM claimed c JOIN u ON u.k = c.idempotency_key
    RETURNING id, idempotency_key
)
SELECT id, idempotency_key, NULL::text FROM stored
UNION ALL
SELECT i.event_id, i.idempotency_key, i.fingerprint
FROM u CROSS JOIN LATERAL (
    SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
    WHERE tenant_id = {tenant}::uuid AND idempotency_key = u.k
) i
WHERE NOT EXISTS (SELECT FROM claimed c WHERE c.idempotency_key = u.k)
"""
# The rows travel as one JSON document (jsonb_to_recordset), not as six arrays: one parameter to
# quote instead of one per value, which client-side binding does in Python.
# Exactly once per (tenant, key) is the idempotency table's primary key (a partitioned ledger
# cannot carry that unique constraint): a key claimed there gets its event id from the ledger's
# sequence and its ledger row in the same statement; a key already there gets neither.
# Keys are claimed in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.
# The same statement answers for the keys it did not claim (fingerprint not NULL), looking up
# only those, one primary-key probe each: a batch of new keys probes nothing more (a SELECT of
# every key cost about 0.8 ms of PostgreSQL per 100-event batch). The data-modifying CTEs
# cannot see each other's rows, so that lookup sees exactly the keys stored before this
# statement's snapshot. A key that a concurrent request committed after it (the INSERT waited
# on it, then skipped it) is in neither half: existing(), a new statement with a fresh
# snapshot, finds those.
_PLAIN_SQL = _INSERT_SQL.format(rows="%(rows)s", tenant="%(tenant)s", key_id="%(key_id)s")

# Planning that statement costs PostgreSQL about 0.16 ms, more than running it for one event (the
# minimal view's INSERT plans in 0.01 ms). A session that keeps prepared statements (a direct
# connection, a session-pooling PgBouncer) prepares it once and runs its generic plan (RLS
# reads the scope at run time, so one plan serves every tenant). A generic plan is made once,
# from the statistics of that moment: one made while the idempotency table was empty scanned it
# (sequentially, or every row of the tenant by primary key) for the unclaimed keys, 10 -> 45 ms
# per 100-event batch as it grew to 60,000 rows. So the lookup is a per-key join on the whole
# primary key, and the transaction that runs the prepared statement turns sequential scans
# off: every plan it can get probes the primary key (flat 2.6-3.5 ms per batch over the same
# growth, tests/ingest/test_ledger_write.py). Under transaction pooling
# (CODEX_DB_POOL_MODE=transaction) a PREPARE would land on one server connection and the EXECUTE
# on another: the plain statement is used, and a session found losing its prepared statement
# anyway (a pooler nobody declared) turns preparing off for the process.
PREPARED_NAME = "codex_ledger_write"
_PREPARE_SQL = f"PREPARE {PREPARED_NAME} (text, text, text) AS " + _INSERT_SQL.format(
    rows="$1", tenant="$2", key_id="$3"
)
_EXECUTE_SQL = f"EXECUTE {PREPARED_NAME} (%(rows)s, %(tenant)s, %(key_id)s)"
_UNDEFINED_PREPARED = "26000"  # invalid_sql_statement_name: no such prepared statement
_prepared_on: weakref.WeakSet = weakref.WeakSet()  # psycopg connections that hold it
_preparing = {"on": True}  # off for the process once a session lost it right after PREPARE

_EXISTING_SQL = """
SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
WHERE tenant_id = %(tenant)s::uuid
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(keys)s::jsonb)))
"""

# Run as one simple-protocol query string: scope, then the statement. Outside a transaction
# (every request: autocommit) PostgreSQL runs such a string as one implicit transaction, so it is
# one round trip and one commit, and the set_config(..., true) scope ends with it: nothing leaks
# into the pooled connection and nothing needs restoring. The prepared form also asks for the
# generic plan for this transaction only (the default would re-plan it five times first, and
# again whenever a custom plan looks cheaper).
_SCOPE_SQL = (
    "SELECT set_config('app.tenant_id', %(tenant)s, true), set_config('app.system_scope', '', true)"
)
_GENERIC_PLAN_SQL = (
    ", set_config('plan_cache_mode', 'force_generic_plan', true),"
    " set_config('enable_seqscan', 'off', true)"
)
# Inside a caller's transaction (tests, scripts) the scope would outlive the statement: save the
# caller's scope first and put it back after.
_SCOPE_SAVE_SQL = (
    "SELECT set_config('app.prev_tenant', coalesce(current_setting('app.tenant_id', true), ''),"
    " true), set_config('app.prev_system', coalesce(current_setting('app.system_scope', true),"
    " ''), true), set_config('app.prev_plan', current_setting('plan_cache_mode'), true),"
    " set_config('app.prev_seqscan', current_setting('enable_seqscan'), true)"
)
_SCOPE_RESTORE_SQL = (
    "SELECT set_config('app.tenant_id', current_setting('app.prev_tenant'), true),"
    " set_config('app.system_scope', current_setting('app.prev_system'), true),"
    " set_config('plan_cache_mode', current_setting('app.prev_plan'), true),"
    " set_config('enable_seqscan', current_setting('app.prev_seqscan'), true)"
)


def _scoped(sql: str, nested: bool, scope: str = _SCOPE_SQL) -> str:
    """`sql` run in the tenant's scope, as one query string (see _SCOPE_SQL)."""
    if nested:
        return ";\n".join([_SCOPE_SAVE_SQL, scope, sql.strip(), _SCOPE_RESTORE_SQL])
    return ";\n".join([scope, sql.strip()])


_PLAIN = {nested: _scoped(_PLAIN_SQL, nested) for nested in (False, True)}
_PREPARED_SCOPE_SQL = _SCOPE_SQL + _GENERIC_PLAN_SQL
_PREPARED = {nested: _scoped(_EXECUTE_SQL, nested, _PREPARED_SCOPE_SQL) for nested in (False, True)}
_EXISTING = {nested: _scoped(_EXISTING_SQL, nested) for nested in (False, True)}


def write(rows: str, tenant_id: str, key_id: str) -> list[tuple]:
    """Store `rows` (JSON array): (id, key, None) if stored now, else (id, key, fingerprint)."""
    # The connection looked up once: each `connection.x` goes through Django's proxy and an
    # asgiref Local (about a dozen per request were 3% of a single event's CPU).
    db = connections[DEFAULT_DB_ALIAS]
    params = {"rows": rows, "tenant": tenant_id, "key_id": key_id}
    if not _preparing["on"] or db.settings_dict.get("POOL_MODE") == "transaction":
        return _run(db, _PLAIN, params)
    db.ensure_connection()
    raw = db.connection
    if raw not in _prepared_on:
        _prepare(db)
        _prepared_on.add(raw)
    try:
        return _run(db, _PREPARED, params)
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != _UNDEFINED_PREPARED:
            raise
    # The session lost it (DISCARD ALL, a pooler between us and the server): prepare once more.
    _prepared_on.discard(raw)
    _prepare(db)
    try:
        rows_out = _run(db, _PREPARED, params)
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != _UNDEFINED_PREPARED:
            raise
        _preparing["on"] = False
        logger.warning(
            "prepared statements do not survive on this database connection (a transaction "
            "pooler? set CODEX_DB_POOL_MODE=transaction); the ledger write is planned per call"
        )
        return _run(db, _PLAIN, params)
    _prepared_on.add(raw)
    return rows_out


def existing(keys: list[str], tenant_id: str) -> list[tuple]:
    """(event id, key, fingerprint) of these keys, in a new statement (a fresh snapshot)."""
    params = {"tenant": tenant_id, "keys": orjson.dumps(keys).decode()}
    return _run(connections[DEFAULT_DB_ALIAS], _EXISTING, params)


def _prepare(db) -> None:
    # Looked up first: a session may hold it already (a connection our bookkeeping lost track
    # of), and a failing PREPARE would break a caller's transaction.
    with _cursor(db) as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [PREPARED_NAME]
        )
        if not cursor.fetchone()[0]:
            cursor.execute(_PREPARE_SQL)


def _run(db, sql: dict[bool, str], params: dict) -> list[tuple]:
    """Run a scoped query string; the rows of its statement (the one after the scope)."""
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
