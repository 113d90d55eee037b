"""Accepting events: one round trip stores a request's events exactly once per tenant."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from django.db import connection, transaction

from codex import error_codes as codes
from codex.errors import Unavailable
from ingest.validation import Item
from ingest.wake import drain_wake


@dataclass(frozen=True)
class ItemResult:
    """The answer for one position of a request."""

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
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS u(k text, t text, s text, o timestamptz, p jsonb, f text, j text)
), claimed AS (
    INSERT INTO ingest_idempotency (tenant_id, idempotency_key, fingerprint, event_id, received_at)
    SELECT %s::uuid, u.k, u.f, nextval('ingest_event_id_seq'), now() FROM u
    ORDER BY u.k
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING idempotency_key, event_id, received_at
)
INSERT INTO ingest_event
    (id, tenant_id, idempotency_key, type, source, occurred_at, received_at, payload,
     fingerprint, key_id, subject_id)
SELECT c.event_id, %s::uuid, u.k, u.t, u.s, u.o, c.received_at, u.p, u.f, %s, u.j
FROM claimed c JOIN u ON u.k = c.idempotency_key
RETURNING id, idempotency_key
"""
# The rows travel as one JSON document (jsonb_to_recordset), not as six arrays: one parameter to
# quote instead of one per value, which client-side binding does in Python.
# Exactly once per (tenant, key) is the idempotency table's primary key (a partitioned ledger
# cannot carry that unique constraint): a key claimed there gets its event id from the ledger's
# sequence and its ledger row in the same statement; a key already there gets neither.
# Keys are claimed in key order so two overlapping batches lock keys in the same order and
# cannot deadlock each other.

_EXISTING_SQL = """
SELECT event_id, idempotency_key, fingerprint FROM ingest_idempotency
WHERE tenant_id = %s::uuid
  AND idempotency_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))
"""
# The whole write as one simple-protocol query string: scope, INSERT, the rows of every key, scope
# back. Outside a transaction PostgreSQL runs such a string as one implicit transaction, so this
# is one round trip and one commit, and the set_config(..., true) scope ends with it (nothing
# leaks into the pooled connection). READ COMMITTED gives the SELECT a fresh snapshot: it sees
# rows that a concurrent request committed while the INSERT waited on them.
_WRITE_SQL = ";\n".join(
    [
        "SELECT set_config('app.prev_tenant', coalesce(current_setting('app.tenant_id', true),"
        " ''), true), set_config('app.prev_system', coalesce(current_setting("
        "'app.system_scope', true), ''), true), set_config('app.tenant_id', %s, true),"
        " set_config('app.system_scope', '', true)",
        _INSERT_SQL.strip(),
        _EXISTING_SQL.strip(),
        "SELECT set_config('app.tenant_id', current_setting('app.prev_tenant'), true),"
        " set_config('app.system_scope', current_setting('app.prev_system'), true)",
    ]
)


def _write(tenant_id: str, key_id: str, events: list) -> tuple[dict, dict]:
    """Run _WRITE_SQL: ({key: id} inserted now, {key: (id, fingerprint)} of every key)."""
    keys = [e.idempotency_key for e in events]
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
    params = [tenant_id, rows, tenant_id, tenant_id, key_id, tenant_id, orjson.dumps(keys).decode()]
    # Inside a caller's transaction (tests, scripts) a savepoint keeps a failure from breaking it.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(_WRITE_SQL, params)
        cursor.nextset()
        inserted = {key: event_id for event_id, key in cursor.fetchall()}
        cursor.nextset()
        rows = {key: (event_id, fp) for event_id, key, fp in cursor.fetchall()}
        cursor.nextset()
    return inserted, rows


def events_ingest(*, tenant_id: uuid.UUID, key_id: str, items: list[Item]) -> list[ItemResult]:
    """Store the valid events of a request exactly once per (tenant, idempotency_key).

    One round trip, one transaction: INSERT .. ON CONFLICT DO NOTHING RETURNING for the batch and
    a SELECT of its keys (_WRITE_SQL); after commit the tenant's drain is woken (debounced).
    """
    firsts: dict[str, Any] = {}
    for item in items:
        if item.event is not None:
            firsts.setdefault(item.event.idempotency_key, item.event)
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    if firsts:
        inserted, rows = _write(str(uuid.UUID(str(tenant_id))), key_id, list(firsts.values()))
        existing = {key: row for key, row in rows.items() if key not in inserted}
        if len(rows) != len(firsts):
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
