"""Per-tenant request rate limit on Redis (a fixed one-second window), failing open on errors."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache
from redis.exceptions import RedisError

from codex.cache import redis_client
from flags.selectors import effective_flags_cached
from ingest import metrics

logger = logging.getLogger(__name__)
GROUP = "ingest.events"
WINDOW_S = 1


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, with the IETF draft RateLimit headers to send."""

    limited: bool
    limit: int
    remaining: int | None  # None when the cache was unreachable (fail open)
    reset_s: int

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers), Retry-After."""
        out = {"RateLimit-Policy": f'"tenant";q={self.limit};w={WINDOW_S}'}
        if self.remaining is not None:
            out["RateLimit"] = f'"tenant";r={self.remaining};t={self.reset_s}'
        if self.limited:
            out["Retry-After"] = str(self.reset_s)
        return out


def tenant_rate(tenant_id) -> int:
    """Requests per second the tenant may send (runtime flag ingestRatePerSec, <= 3 s old)."""
    return int(effective_flags_cached(tenant_id=tenant_id)["ingestRatePerSec"])


# Take up to ARGV[1] requests' worth of this window's budget (ARGV[2]) in one call: (granted,
# count after). The window key expires with the window.
_LEASE_LUA = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
local over = n - tonumber(ARGV[2])
if over < 0 then over = 0 end
local granted = tonumber(ARGV[1]) - over
if granted < 0 then granted = 0 end
return {granted, n}
"""
_scripts: dict[int, object] = {}
# Leases: a process takes a slice of a tenant's window budget at a time and admits that many
# requests without another round trip. The slice is 1% of the limit (at most 100): a tenant at
# 50/s pays one Redis call per request (exact, as before), one at 100,000/s one per 100 requests.
# What a lease costs in accuracy: a slice one process took but did not use is lost to the others
# for the rest of that second (at most 1% of the limit per process).
_LEASE_SHARE = 100
_LEASE_MAX = 100
_leases: dict[str, list] = {}  # tenant -> [window, requests left in the lease, exhausted, count]
_leases_lock = threading.Lock()


def _lease(tenant_key: str, window: int, size: int, limit: int) -> tuple[int, int]:
    """Take up to `size` of the tenant's budget for `window`: (granted, shared count after)."""
    key = cache.make_and_validate_key(f"rl:{GROUP}:{tenant_key}:{window}")
    client = redis_client(cache, key)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_LEASE_LUA)
    granted, count = script(keys=[key], args=[size, limit, WINDOW_S + 1])
    return int(granted), int(count)


def check(*, tenant_id, limit: int) -> Decision:
    """Count one request against the tenant's window; fail open if Redis errors.

    A fixed one-second window per tenant shared by every process through Redis, taken in leases
    (above) with one Lua call each. django-ratelimit's get_usage would cost two round trips per
    request (cache.add + cache.incr) on the hottest path there is.
    """
    tenant_key = str(tenant_id)
    now = time.time()
    window = int(now) // WINDOW_S
    reset_s = min(WINDOW_S, max(1, math.ceil((window + 1) * WINDOW_S - now)))
    with _leases_lock:
        state = _leases.get(tenant_key)
        if state is not None and state[0] == window:
            if state[1] > 0:
                state[1] -= 1
                return Decision(False, limit, max(0, limit - state[3]), reset_s)
            if state[2]:
                return Decision(True, limit, 0, reset_s)
    size = max(1, min(limit // _LEASE_SHARE, _LEASE_MAX))
    try:
        granted, count = _lease(tenant_key, window, size, limit)
    except (RedisError, OSError) as exc:
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("rate limit check failed; allowing (fail open)", exc_info=exc)
        return Decision(limited=False, limit=limit, remaining=None, reset_s=WINDOW_S)
    with _leases_lock:
        if len(_leases) > 50_000:
            _leases.clear()  # bound: a lease is only ever worth one second
        # This request takes one of the granted; the rest are admitted locally.
        _leases[tenant_key] = [window, max(0, granted - 1), granted < size, count]
    if granted == 0:
        return Decision(True, limit, 0, reset_s)
    return Decision(False, limit, max(0, limit - count), reset_s)
