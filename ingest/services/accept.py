"""Accepting events: one round trip stores a request's events exactly once per tenant."""

from __future__ import annotations

import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from django.db import connection, transaction

from codex import error_codes as codes
from codex.errors import Unavailable
from ingest.validation import Item
from ingest.wake import drain_wake


# slots, not frozen: a frozen dataclass sets each field through object.__setattr__ (one per
# position of a 500-event batch). Read-only by convention.
@dataclass(slots=True)
class ItemResult:
    """The answer for one position of a request (read-only)."""

    idempotency_key: str | None
    status: str  # accepted | duplicate | conflict | rejected
    id: int | None = None
    error: dict[str, str] | None = None
    source: str | None = None


CONFLICT_MESSAGE = codes.IDEMPOTENCY_KEY_REUSED.message
# A batch item's `error` codes, looked up once (per-item work on the hot path).
_INVALID_EVENT = codes.INVALID_EVENT.code
_INVALID_EVENT_MESSAGE = codes.INVALID_EVENT.message
_KEY_REUSED = codes.IDEMPOTENCY_KEY_REUSED.code

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
# neither half: _EXISTING_SQL, a new statement with a fresh snapshot, finds those.

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


def _write(tenant_id: str, key_id: str, events: list) -> tuple[dict, dict]:
    """Store events of distinct keys: ({key: id} inserted now, {key: (id, fingerprint)} others)."""
    rows = orjson.dumps(
        [
            {
                "k": e.idempotency_key,
                "t": e.type,
                "s": e.source,
                "o": e.occurred_at.isoformat(),
                "p": orjson.Fragment(e.payload_json),
                "f": e.fingerprint,
                "j": e.subject_id,
            }
            for e in events
        ]
    ).decode()
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    for event_id, key, fingerprint in _run(
        _WRITE, {"rows": rows, "tenant": tenant_id, "key_id": key_id}
    ):
        if fingerprint is None:
            inserted[key] = event_id
        else:
            existing[key] = (event_id, fingerprint)
    if len(inserted) + len(existing) < len(events):
        # Keys a concurrent request committed while this one waited on them: a fresh snapshot.
        known = inserted.keys() | existing.keys()
        missing = [e.idempotency_key for e in events if e.idempotency_key not in known]
        params = {"tenant": tenant_id, "keys": orjson.dumps(missing).decode()}
        for event_id, key, fingerprint in _run(_EXISTING, params):
            existing[key] = (event_id, fingerprint)
    return inserted, existing


def events_ingest(*, tenant_id: uuid.UUID, key_id: str, items: list[Item]) -> list[ItemResult]:
    """Store the valid events of a request exactly once per (tenant, idempotency_key).

    One round trip, one transaction in the common case (_INSERT_SQL: the keys claimed, the ledger
    rows, and the earlier rows of keys it did not claim); a second only for keys a concurrent
    request committed meanwhile. After commit the tenant's drain is woken (debounced).
    """
    firsts: dict[str, Any] = {}
    for item in items:
        if item.event is not None:
            firsts.setdefault(item.event.idempotency_key, item.event)
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    if firsts:
        inserted, existing = _write(str(uuid.UUID(str(tenant_id))), key_id, list(firsts.values()))
        if len(inserted) + len(existing) != len(firsts):
            # Only possible if a conflicting row vanished between the two statements.
            raise Unavailable("Concurrent change; retry.", retry_after=1)
        if inserted:
            # After commit, off the request thread, debounced: nothing depends on it (the ledger
            # is the work list; the sweeper wakes drains for anything a lost wake-up left).
            transaction.on_commit(partial(drain_wake, tenant_id))
    fingerprints = {key: firsts[key].fingerprint for key in inserted}
    fingerprints.update({key: fp for key, (_, fp) in existing.items()})
    ids = dict(inserted)
    ids.update({key: event_id for key, (event_id, _) in existing.items()})
    return _item_results(items, inserted=inserted, ids=ids, fingerprints=fingerprints)


def _item_results(
    items: list[Item], *, inserted: dict[str, int], ids: dict[str, int], fingerprints: dict
) -> list[ItemResult]:
    """Each position's answer: accepted (first of a new key), duplicate, conflict, rejected."""
    results: list[ItemResult] = []
    answered_new: set[str] = set()
    for item in items:
        event = item.event
        if event is None:
            error = {"code": _INVALID_EVENT, "message": item.error or _INVALID_EVENT_MESSAGE}
            results.append(ItemResult(item.idempotency_key, "rejected", error=error))
            continue
        key = event.idempotency_key
        if key in inserted and key not in answered_new:
            answered_new.add(key)
            results.append(ItemResult(key, "accepted", ids[key], source=event.source))
        elif event.fingerprint == fingerprints[key]:
            results.append(ItemResult(key, "duplicate", ids[key], source=event.source))
        else:
            error = {"code": _KEY_REUSED, "message": CONFLICT_MESSAGE}
            results.append(ItemResult(key, "conflict", None, error=error, source=event.source))
    return results
