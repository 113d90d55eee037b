"""In-process store of resolved signing keys, with bounded staleness (the ingest hot path).

Authentication used to look the key up in PostgreSQL on every request (its own transaction, the
ORM, a Fernet decrypt): about 29% of a request's CPU. A resolved key is now kept for
`settings.CODEX_KEY_CACHE_TTL_S` seconds (default 3) per process
(`tenants.selectors.signing_key_resolve_cached`). Why this is safe:

* a revocation, a device revocation or a tenant suspension made on another process takes effect
  here within the TTL (the promise is 5 s, tested across two processes); the process that makes
  the change forgets every entry at its commit, so it sees the change at once; offboarding
  deletes a tenant's rows again after a fence derived from the TTL (CODEX_OFFBOARD_FENCE_S), so
  what other processes accepted meanwhile goes too;
* a rotated key's overlap end (`ResolvedKey.usable_until`) is checked on every use, so it is exact;
* unknown key ids are cached too (as None): a flood of made-up ids costs one lookup per id and TTL;
* the store is bounded (LRU, `CODEX_KEY_CACHE_SIZE`, default 20,000 keys).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.db import transaction

_MISSING = object()
_entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
_lock = threading.Lock()


def get(key_id: str) -> Any:
    """The fresh cached value for key_id, or keycache.MISSING."""
    entry = _entries.get(key_id)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return _MISSING


def put(key_id: str, value: Any) -> None:
    """Remember value for key_id for the TTL, evicting the least recently stored past the size."""
    ttl = float(getattr(settings, "CODEX_KEY_CACHE_TTL_S", 3.0))
    size = int(getattr(settings, "CODEX_KEY_CACHE_SIZE", 20_000))
    with _lock:
        _entries[key_id] = (time.monotonic() + ttl, value)
        _entries.move_to_end(key_id)
        while len(_entries) > size:
            _entries.popitem(last=False)


def clear() -> None:
    """Forget every cached key (this process only; the others expire within the TTL)."""
    with _lock:
        _entries.clear()


def clear_on_commit() -> None:
    """Forget every cached key once the current transaction commits (at once outside one)."""
    transaction.on_commit(clear)


def size() -> int:
    """How many keys this process holds."""
    return len(_entries)


MISSING = _MISSING
