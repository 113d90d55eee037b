"""In-process store of resolved signing keys and sources (the ingest hot path), push-invalidated.

Authentication used to look the key up in PostgreSQL on every request (its own transaction, the
ORM, a Fernet decrypt). A resolved key (its decrypted secret, not the ciphertext) is kept per
process and answers until its tenant's cache version moves (tenants.cachesync: a trigger bumps it
in the writer's transaction, every process polls it once a second), for at most
`CODEX_CACHE_LONG_TTL_S` (default 3600 s). While the poll fails, entries older than
`CODEX_KEY_CACHE_TTL_S` (default 3 s) are not trusted. Why this is safe:

* a revocation, a device revocation, a suspension or an offboarding made on another process is
  seen here within about a second (the poll), and within 3 s with the poll cut (the promise is
  5 s, tested across processes both ways); the process that makes the change forgets every entry
  at its commit; offboarding deletes a tenant's rows again after a fence derived from these
  bounds (CODEX_OFFBOARD_FENCE_S), so what other processes accepted meanwhile goes too;
* a rotated key's overlap end (`ResolvedKey.usable_until`) is checked on every use, so it is exact;
* unknown key ids are cached too (as None), for the short TTL only: a flood of made-up ids costs
  one lookup per id and TTL and cannot push real keys out for long;
* the store is bounded (LRU on insertion, `CODEX_KEY_CACHE_SIZE`, default 200,000 entries).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from tenants import cachesync

_MISSING = object()
# cache key -> (stored at, cache token, value); the token says which generations it was read at.
# A plain dict (insertion-ordered, re-inserted on put): an OrderedDict's links cost about 100
# bytes an entry, 10 MB per worker at 100,000 keys.
_entries: dict[str, tuple[float, tuple[int, ...], Any]] = {}
_tokens: dict[tuple[int, ...], tuple[int, ...]] = {}  # one shared object per distinct token
_lock = threading.Lock()


def get(cache_key: str, scope: str) -> Any:
    """The cached value for cache_key while still valid for its tenant `scope`, else MISSING."""
    entry = _entries.get(cache_key)
    if entry is None:
        return _MISSING
    stored_at, stored_token, value = entry
    # A negative answer (no such key) lives for the short TTL only.
    if cachesync.fresh(stored_at, stored_token, cachesync.token(scope), short_only=value is None):
        return value
    return _MISSING


def resolve(cache_key: str, tenant_id: uuid.UUID | None, lookup: Callable[[], Any]) -> Any:
    """The cached answer for cache_key while valid, else `lookup()` (cached; raises uncached).

    `tenant_id` names the tenant whose cache version the answer depends on (None: no tenant).
    """
    cachesync.sync()
    scope = str(tenant_id) if tenant_id is not None else ""
    found = get(cache_key, scope)
    if found is not _MISSING:
        return found
    token = cachesync.token(scope)  # before the read: a change meanwhile makes the entry stale
    value = lookup()
    put(cache_key, value, token)
    return value


def put(cache_key: str, value: Any, token: tuple[int, ...]) -> None:
    """Remember value, read under `token` (taken before the read), evicting the oldest past size."""
    if cachesync.short_ttl() <= 0:
        return  # caching turned off
    size = int(getattr(settings, "CODEX_KEY_CACHE_SIZE", 200_000))
    with _lock:
        if len(_tokens) > 10_000:
            _tokens.clear()
        token = _tokens.setdefault(token, token)
        _entries.pop(cache_key, None)  # re-inserted last: the oldest stored goes first
        _entries[cache_key] = (time.monotonic(), token, value)
        while len(_entries) > size:
            del _entries[next(iter(_entries))]


def put_absent(cache_key: str, value: Any, token: tuple[int, ...]) -> bool:
    """put, unless an entry is there already (it may be fresher); True when stored."""
    if cache_key in _entries:
        return False
    put(cache_key, value, token)
    return True


def clear() -> None:
    """Forget every cached key (this process; the others follow their next poll)."""
    with _lock:
        _entries.clear()


def clear_on_commit() -> None:
    """Forget every cached key once the current transaction commits (at once outside one)."""
    transaction.on_commit(clear)


def size() -> int:
    """How many keys this process holds."""
    return len(_entries)


MISSING = _MISSING
