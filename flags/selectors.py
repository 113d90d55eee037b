"""Reads of runtime flags: effective values (cached in Redis, fail-soft) and their provenance.

Layers, first match wins: the tenant's override, the global value, the built-in default.
The cache holds the two stored layers separately ("global" and one entry per tenant), so a global
change invalidates one key and a tenant change another; a read is one Redis round trip
(`get_many`). If Redis fails the read goes to PostgreSQL (the source of truth); if that fails too,
the built-in defaults answer. Nothing here raises on an outage: ingest calls it on every request.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DatabaseError
from redis.exceptions import RedisError

from flags import metrics
from flags.models import GlobalFlag, TenantFlag
from flags.registry import FlagValueError, defaults, public_keys, specs
from tenants import cachesync
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)

# Server-side cache lifetime. Every change invalidates at once; the TTL only bounds staleness if
# an invalidation was lost (Redis unreachable at that moment).
CACHE_TTL_SEC = 30
GLOBAL_CACHE_KEY = "flags:v1:global"
# After a Redis error, skip the cache for this long so a Redis outage does not add a socket
# timeout to every request.
CACHE_BACKOFF_SEC = 5.0
_cache_skip_until = 0.0


def tenant_cache_key(tenant_id: uuid.UUID | str) -> str:
    """Cache key of a tenant's overrides."""
    return f"flags:v1:tenant:{uuid.UUID(str(tenant_id))}"


@dataclass(frozen=True)
class Effective:
    """A flag's value in force and where it comes from: "tenant", "global" or "default"."""

    key: str
    value: object
    source: str
    global_value: object
    tenant_value: object  # None when the tenant has no override


def _clean(stored: dict) -> dict[str, object]:
    """Drop stored values that are unknown or out of today's bounds (logged), keep the rest."""
    out: dict[str, object] = {}
    all_specs = specs()
    for key, value in stored.items():
        spec = all_specs.get(key)
        if spec is None or value is None:
            continue
        try:
            out[key] = spec.validate(value)
        except FlagValueError as exc:
            logger.warning("ignoring stored flag value", extra={"flag": key, "error": str(exc)})
    return out


def _global_from_db() -> dict[str, object]:
    return _clean(dict(GlobalFlag.objects.filter(value__isnull=False).values_list("key", "value")))


def _tenant_from_db(tenant_id: uuid.UUID | str) -> dict[str, object]:
    with tenant_scope(tenant_id):
        rows = TenantFlag.objects.filter(tenant_id=tenant_id).values_list("key", "value")
        return _clean(dict(rows))


def stored_layers(
    *, tenant_id: uuid.UUID | str | None
) -> tuple[dict[str, object], dict[str, object]]:
    """(global values, tenant overrides) straight from PostgreSQL, no cache."""
    global_values = _global_from_db()
    tenant_values = _tenant_from_db(tenant_id) if tenant_id is not None else {}
    return global_values, tenant_values


def _cache_usable() -> bool:
    return time.monotonic() >= _cache_skip_until


def note_cache_error(op: str, exc: Exception) -> None:
    global _cache_skip_until
    metrics.FLAG_CACHE_ERRORS.labels(op=op).inc()
    if _cache_usable():
        logger.warning(
            "flags cache unavailable; reading PostgreSQL",
            extra={"op": op, "error": f"{type(exc).__name__}: {exc}"},
        )
    _cache_skip_until = time.monotonic() + CACHE_BACKOFF_SEC


def _cached_layers(
    tenant_id: uuid.UUID | str | None,
) -> tuple[dict[str, object], dict[str, object]]:
    """The two stored layers, from the cache when possible; raises DatabaseError only."""
    keys = [GLOBAL_CACHE_KEY] + ([tenant_cache_key(tenant_id)] if tenant_id is not None else [])
    if not _cache_usable():
        metrics.FLAG_READ_FALLBACKS.labels(source="db").inc()
        return stored_layers(tenant_id=tenant_id)
    try:
        found = cache.get_many(keys)
    except RedisError as exc:
        note_cache_error("read", exc)
        metrics.FLAG_READ_FALLBACKS.labels(source="db").inc()
        return stored_layers(tenant_id=tenant_id)
    missing: dict[str, dict] = {}
    global_values = found.get(GLOBAL_CACHE_KEY)
    if global_values is None:
        global_values = missing[GLOBAL_CACHE_KEY] = _global_from_db()
    tenant_values: dict[str, object] = {}
    if tenant_id is not None:
        tenant_values = found.get(keys[1])
        if tenant_values is None:
            tenant_values = missing[keys[1]] = _tenant_from_db(tenant_id)
    if missing:
        try:
            cache.set_many(missing, timeout=CACHE_TTL_SEC)
        except RedisError as exc:
            note_cache_error("write", exc)
    return global_values, tenant_values


def effective_flags(*, tenant_id: uuid.UUID | str | None) -> dict[str, object]:
    """The values in force for a tenant (or the global values when tenant_id is None).

    Cheap (one Redis round trip) and never raises for an outage: Redis down -> PostgreSQL,
    PostgreSQL down too -> built-in defaults (both logged and counted).
    """
    values = defaults()
    try:
        global_values, tenant_values = _cached_layers(tenant_id)
    except DatabaseError as exc:
        metrics.FLAG_READ_FALLBACKS.labels(source="defaults").inc()
        logger.error(
            "flags unreadable; answering built-in defaults",
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )
        return values
    values.update(global_values)
    values.update(tenant_values)
    return values


# In-process layer for the ingest hot path (the rate limit, retryCap, signatureV1Allowed): values
# filled from PostgreSQL (the source of truth, not the Redis layer, which a writer clears only
# after its commit) and kept until the tenant's or the global cache version moves
# (tenants.cachesync: about a second on every process; the short TTL while the poll fails). A
# change made in this process clears it at once (flags.services).
_local: dict[str | None, tuple[float, tuple[int, ...], dict[str, object], bool]] = {}
_LOCAL_MAX = 200_000


def _scope(tenant_id: uuid.UUID | str | None) -> str | None:
    if tenant_id is None:
        return None
    return str(tenant_id) if isinstance(tenant_id, uuid.UUID) else str(uuid.UUID(str(tenant_id)))


def effective_flags_cached(*, tenant_id: uuid.UUID | str | None) -> dict[str, object]:
    """effective_flags, answered in process while no change was seen (do not mutate the answer)."""
    cachesync.sync(raise_outage=False)  # never raises: ingest calls it on every request
    scope = _scope(tenant_id)
    token = cachesync.token(scope or cachesync.GLOBAL, cachesync.GLOBAL)
    entry = _local.get(scope)
    if entry is not None and cachesync.fresh(entry[0], entry[1], token, short_only=entry[3]):
        return entry[2]
    stored_at = time.monotonic()
    values = defaults()
    fallback = False
    try:
        global_values, tenant_values = stored_layers(tenant_id=scope)
    except DatabaseError:
        # PostgreSQL away: the Redis layer or the defaults, kept for the short TTL only.
        values, fallback = effective_flags(tenant_id=scope), True
    else:
        values.update(global_values)
        values.update(tenant_values)
    if cachesync.short_ttl() > 0:
        if len(_local) >= _LOCAL_MAX:
            _local.clear()  # crude bound; one more read per tenant after it
        _local[scope] = (stored_at, token, values, fallback)
    return values


def flags_warm(*, tenant_ids: set[uuid.UUID], snap: tuple[int, dict[str, int]]) -> int:
    """Fill the in-process layer for these tenants in two queries (a new process's warm-up).

    `snap` is tenants.cachesync.snapshot() taken before reading: a change since makes the
    entries stale. Returns how many tenants were filled.
    """
    if cachesync.short_ttl() <= 0:
        return 0
    stored_at = time.monotonic()
    global_values = _global_from_db()
    overrides: dict[str, dict] = {str(tid): {} for tid in tenant_ids}
    with system_scope("flags-warm"):
        rows = TenantFlag.objects.filter(tenant_id__in=list(tenant_ids)).values_list(
            "tenant_id", "key", "value"
        )
        for tid, key, value in rows.iterator(chunk_size=5000):
            overrides[str(tid)][key] = value
    base = defaults()
    base.update(global_values)
    for scope, stored in overrides.items():
        if scope in _local:
            continue  # a request filled it meanwhile: as fresh or fresher
        # Tenants without overrides share one answer (answers are never mutated).
        values = {**base, **_clean(stored)} if stored else base
        token = cachesync.token_at(snap, scope, cachesync.GLOBAL)
        _local[scope] = (stored_at, token, values, False)
    return len(overrides)


def local_flags_clear() -> None:
    """Forget this process's in-process flag values (after a change)."""
    _local.clear()


def public_config(*, tenant_id: uuid.UUID | str) -> dict[str, object]:
    """The document GET /config answers: exactly the public flags, in registry order."""
    values = effective_flags(tenant_id=tenant_id)
    return {key: values[key] for key in public_keys()}


def _explain(global_values: dict, tenant_values: dict) -> dict[str, Effective]:
    out: dict[str, Effective] = {}
    for key, spec in specs().items():
        if key in tenant_values:
            value, source = tenant_values[key], "tenant"
        elif key in global_values:
            value, source = global_values[key], "global"
        else:
            value, source = spec.default, "default"
        out[key] = Effective(
            key=key,
            value=value,
            source=source,
            global_value=global_values.get(key, spec.default),
            tenant_value=tenant_values.get(key),
        )
    return out


def flags_explain(*, tenant_id: uuid.UUID | str | None) -> dict[str, Effective]:
    """Every flag with its value in force and its source, read from PostgreSQL (admin, CLI)."""
    global_values, tenant_values = stored_layers(tenant_id=tenant_id)
    return _explain(global_values, tenant_values)


def flags_explain_many(*, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Effective]]:
    """flags_explain for many tenants in two queries (the admin's tenant list)."""
    global_values = _global_from_db()
    by_tenant: dict[uuid.UUID, dict] = {tid: {} for tid in tenant_ids}
    with system_scope("admin"):
        rows = TenantFlag.objects.filter(tenant_id__in=tenant_ids).values_list(
            "tenant_id", "key", "value"
        )
        for tid, key, value in rows:
            by_tenant[tid][key] = value
    return {tid: _explain(global_values, _clean(stored)) for tid, stored in by_tenant.items()}


# Browser origins any tenant allows (CORS preflights carry no key, so they cannot name a tenant):
# read across tenants in a system scope at most every ORIGINS_TTL_SEC per process.
ORIGINS_TTL_SEC = 30.0
_origins: tuple[float, frozenset[str]] = (0.0, frozenset())


def origins_allowed_anywhere() -> frozenset[str]:
    """Every origin in some tenant's (or the global) allowedOrigins; empty when unreadable."""
    global _origins
    now = time.monotonic()
    if _origins[0] > now:
        return _origins[1]
    found: set[str] = set()
    try:
        with system_scope("cors-origins"):
            rows = list(
                TenantFlag.objects.filter(key="allowedOrigins").values_list("value", flat=True)
            )
            rows += list(
                GlobalFlag.objects.filter(key="allowedOrigins", value__isnull=False).values_list(
                    "value", flat=True
                )
            )
    except DatabaseError as exc:
        logger.warning("allowedOrigins unreadable; no preflight allowed", extra={"error": str(exc)})
        return frozenset()
    spec = specs()["allowedOrigins"]
    for value in rows:
        try:
            validated = spec.validate(value)
        except FlagValueError:
            continue
        if isinstance(validated, list):
            found.update(validated)
    _origins = (now + ORIGINS_TTL_SEC, frozenset(found))
    return _origins[1]


def origins_forget() -> None:
    """Drop this process's copy of origins_allowed_anywhere (after a change, in tests)."""
    global _origins
    _origins = (0.0, frozenset())
