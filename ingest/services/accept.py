"""Accepting events: one round trip stores a request's events exactly once per tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from django.db import transaction

from codex import error_codes as codes
from codex.errors import Unavailable
from ingest.services import ledger_write
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


def _write(tenant_id: str, key_id: str, events: list) -> tuple[dict, dict]:
    """Store events of distinct keys: ({key: id} inserted now, {key: (id, fingerprint)} others)."""
    rows = orjson.dumps(
        [
            {
                "k": e.idempotency_key,
                "t": e.type,
                "s": e.source,
                "o": e.occurred_iso,
                "p": orjson.Fragment(e.payload_json),
                "f": e.fingerprint,
                "j": e.subject_id,
            }
            for e in events
        ]
    ).decode()
    inserted: dict[str, int] = {}
    existing: dict[str, tuple[int, str]] = {}
    for event_id, key, fingerprint in ledger_write.write(rows, tenant_id, key_id):
        if fingerprint is None:
            inserted[key] = event_id
        else:
            existing[key] = (event_id, fingerprint)
    if len(inserted) + len(existing) < len(events):
        # Keys a concurrent request committed while this one waited on them: a fresh snapshot.
        known = inserted.keys() | existing.keys()
        missing = [e.idempotency_key for e in events if e.idempotency_key not in known]
        for event_id, key, fingerprint in ledger_write.existing(missing, tenant_id):
            existing[key] = (event_id, fingerprint)
    return inserted, existing


def events_ingest(*, tenant_id: uuid.UUID, key_id: str, items: list[Item]) -> list[ItemResult]:
    """Store the valid events of a request exactly once per (tenant, idempotency_key).

    One round trip, one transaction in the common case (ledger_write.write: the keys claimed, the
    ledger rows, and the earlier rows of keys it did not claim); a second only for keys a
    concurrent request committed meanwhile. After commit the tenant's drain is woken (debounced).
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
