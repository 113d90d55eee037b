"""Push invalidation for the in-process caches (keys, sources, flags): long-lived while in sync.

Every write that changes what a process caches about a tenant bumps that tenant's row in
`tenants_cacheversion`, by trigger, in the writer's transaction, stamped with the writer's
transaction id (tenants/cache_sql.py). Each process polls the table at most once per `POLL_S`
(one indexed query, on the request that finds the poll due) for the rows of every transaction
its previous poll's snapshot could not see (xid >= that snapshot's xmin: exact however long a
writer's transaction lasted), and bumps its own generation of each scope that changed. A cached
entry remembers the generations it was resolved under (`token`) and counts as missing once they
moved, so a change reaches every process within about one poll interval.

While the poll fails (the table locked or unreadable) the caches fall back to the short TTL
(`CODEX_KEY_CACHE_TTL_S`): an entry older than that is trusted only while the last successful
poll is less than `HEALTHY_S` old. After a failure, the first successful poll forgets everything
(changes made meanwhile may have been missed). So a revocation is seen within
max(HEALTHY_S, CODEX_KEY_CACHE_TTL_S) even with the channel cut, and within about POLL_S with it
up. `CODEX_CACHE_LONG_TTL_S` bounds any entry's life regardless (default 3600 s).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import nullcontext

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from tenants import metrics

logger = logging.getLogger(__name__)

GLOBAL = "*"
POLL_S = 1.0
HEALTHY_S = 2.0

# One query string, one implicit transaction: a short lock timeout for the read (a migration
# holding the table must not stall requests: the poll fails, the caches fall back), then back.
_POLL_SQL = ";\n".join(
    [
        "SELECT set_config('app.prev_lock_timeout', current_setting('lock_timeout'), true),"
        " set_config('lock_timeout', '200ms', true)",
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, v.scope, v.version"
        " FROM (SELECT 1) AS one LEFT JOIN tenants_cacheversion AS v ON v.xid >= %s::xid8",
        "SELECT set_config('lock_timeout', current_setting('app.prev_lock_timeout'), true)",
    ]
)

_lock = threading.Lock()
_gens: dict[str, int] = {}
_epoch = 0  # bumped to forget everything (first poll, recovery after a failure)
_versions: dict[str, int] = {}
# The xmin of the previous poll's snapshot: every transaction it could not see has an xid at or
# above it, so the next poll reads exactly the rows such transactions wrote (and a few more).
_since: str | None = None
_next_poll = 0.0
_last_ok = -math.inf
_failing = False


def token(*scopes: str) -> tuple[int, ...]:
    """The generations an entry about these scopes is resolved under (compare on use)."""
    return token_at((_epoch, _gens), *scopes)


def snapshot() -> tuple[int, dict[str, int]]:
    """The generations now, for a bulk read: `token_at(snapshot, scope)` after the read."""
    return _epoch, dict(_gens)


def token_at(snap: tuple[int, dict[str, int]], *scopes: str) -> tuple[int, ...]:
    """token(*scopes) as it was at `snap` (a change since makes the entry stale, as it should)."""
    epoch, gens = snap
    return (epoch, *(gens.get(scope, 0) for scope in scopes))


def healthy() -> bool:
    """True while the last successful poll is recent: long-lived entries may be trusted."""
    return time.monotonic() - _last_ok < HEALTHY_S


def fresh(
    stored_at: float,
    stored_token: tuple[int, ...],
    current: tuple[int, ...],
    *,
    short_only: bool = False,
) -> bool:
    """Whether an entry stored at `stored_at` (monotonic) under `stored_token` may answer now.

    `short_only`: the entry is a fallback or a negative answer, good for the short TTL only.
    """
    if stored_token != current:
        return False
    age = time.monotonic() - stored_at
    if age < short_ttl():
        return True
    return not short_only and age < long_ttl() and healthy()


def short_ttl() -> float:
    """The fallback lifetime (s) while the poll fails; 0 turns the caches off."""
    return float(getattr(settings, "CODEX_KEY_CACHE_TTL_S", 3.0))


def long_ttl() -> float:
    """The longest an entry lives while the poll succeeds (s); never below the short TTL."""
    return max(short_ttl(), float(getattr(settings, "CODEX_CACHE_LONG_TTL_S", 3600.0)))


# What a failed poll may be while the database itself works: a lock held on the table (a
# migration), a cancelled statement, the table not there (yet) or not readable. The caches fall
# back to the short TTL. Anything else (no connection, a broken one) is an outage of the database.
_CHANNEL_ERRORS = frozenset({"55P03", "57014", "42P01", "42501"})


def sync(*, raise_outage: bool = True) -> None:
    """Poll the cache versions if a poll is due (cheap otherwise).

    Only on a connection this thread already holds: a poll never opens one, so an unreachable
    database costs a request one connect timeout, not two. A database outage met by the poll is
    raised (the request fails at once, as its own query would) unless `raise_outage` is False.
    """
    global _next_poll
    now = time.monotonic()
    if now < _next_poll or connection.connection is None:
        return  # not due, or not connected yet (the request's own query will connect)
    if not _lock.acquire(blocking=False):
        return  # another thread of this process is polling right now
    try:
        if time.monotonic() < _next_poll:
            return
        _next_poll = now + POLL_S
        outage = _poll()
    finally:
        _lock.release()
    if outage is not None and raise_outage:
        raise outage


def _poll() -> DatabaseError | None:
    """Read the changes; None when that worked or the channel alone failed, else the outage."""
    global _since, _last_ok, _failing, _epoch, _versions
    # The first poll only takes its snapshot's xmin (no rows): it forgets everything anyway.
    since = _since or "18446744073709551615"
    try:
        # A savepoint inside a caller's transaction keeps a failure from breaking it.
        guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with guard, connection.cursor() as cursor:
            cursor.execute(_POLL_SQL, [since])
            cursor.nextset()
            rows = cursor.fetchall()
            cursor.nextset()
    except DatabaseError as exc:
        metrics.CACHE_SYNC_ERRORS.inc()
        if not _failing:
            logger.warning(
                "cache version poll failed; cached keys and flags fall back to the short TTL",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        _failing = True
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        return None if sqlstate in _CHANNEL_ERRORS else exc
    xmin = rows[0][0]
    seen: dict[str, int] = {}
    for _, scope, version in rows:
        if scope is not None:
            seen[scope] = version
    if _since is None or _failing:
        _epoch += 1  # first poll, or back after failures: changes may have been missed
        if _failing:
            logger.info("cache version poll recovered; caches forgotten")
    else:
        for scope, version in seen.items():
            if _versions.get(scope) != version:
                _gens[scope] = _gens.get(scope, 0) + 1
                metrics.CACHE_INVALIDATIONS.inc()
    _versions = seen
    _since = xmin
    _failing = False
    _last_ok = time.monotonic()
    return None


def forget() -> None:
    """Forget every cached entry of this process and poll again on the next use (tests, shell)."""
    global _epoch, _next_poll
    _epoch += 1
    _next_poll = 0.0
