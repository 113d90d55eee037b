"""Per-tenant request rate limit on Redis (a fixed one-second window), failing open on errors."""

from __future__ import annotations

import logging
import math
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


# INCR this window's counter and give it an expiry when it is new: one command, one round trip.
_COUNT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_scripts: dict[int, object] = {}


def _count(tenant_key: str) -> tuple[int, float]:
    """Count one request in this second's window: (count so far, seconds left in the window)."""
    now = time.time()
    window = int(now) // WINDOW_S
    key = cache.make_and_validate_key(f"rl:{GROUP}:{tenant_key}:{window}")
    client = redis_client(cache, key)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_COUNT_LUA)
    count = script(keys=[key], args=[WINDOW_S + 1])
    return int(count), (window + 1) * WINDOW_S - now


def check(*, tenant_id, limit: int) -> Decision:
    """Count one request against the tenant's window; fail open if the cache errors.

    A fixed one-second window per tenant, as django-ratelimit's, shared by every process through
    Redis; counted with one Lua call (INCR, EXPIRE when new) instead of django-ratelimit's
    cache.add + cache.incr (two round trips), because this runs on every ingest request.
    """
    try:
        count, left = _count(str(tenant_id))
    except (RedisError, OSError) as exc:
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("rate limit check failed; allowing (fail open)", exc_info=exc)
        return Decision(limited=False, limit=limit, remaining=None, reset_s=WINDOW_S)
    reset_s = min(WINDOW_S, max(1, math.ceil(left)))
    return Decision(
        limited=count > limit, limit=limit, remaining=max(0, limit - count), reset_s=reset_s
    )
