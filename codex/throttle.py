"""Per-key request limits for signed reads (GET /config, GET /v1/events/<key>) on Redis.

A DRF throttle: after authentication, each signing key may make `limit` requests of a group per
one-second window, counted with one atomic Lua call (INCR, EXPIRE on the first) shared by every
process. Past it the answer is 429 `rate_limited` in the one error format, with Retry-After and
the RateLimit headers the events path sends. Like POST /v1/events it fails open: with Redis
unreachable the read is allowed, logged and counted. The apps pick the limit (a runtime flag).
"""

from __future__ import annotations

import logging
import math
import time

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from codex import error_codes as codes
from codex import metrics
from codex.cache import redis_client
from codex.errors import ApiError

logger = logging.getLogger(__name__)
WINDOW_S = 1
_WINDOW_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_scripts: dict[int, object] = {}


def window_count(*, group: str, key_id: str) -> int:
    """Count one request of `key_id` in `group`'s current window; the count so far."""
    window = int(time.time()) // WINDOW_S
    key = cache.make_and_validate_key(f"rl:{group}:{key_id}:{window}")
    client = redis_client(cache, key)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_WINDOW_LUA)
    return int(script(keys=[key], args=[WINDOW_S + 1]))


class SignedReadThrottle(BaseThrottle):
    """`limit_for(key)` requests per second per signing key (request.auth); 429 past it.

    Subclasses set `group` (the metric's endpoint label and the Redis key space) and `what` (the
    message's noun), and read the limit.
    """

    group = ""
    what = "requests"

    def limit_for(self, key) -> int:
        """Requests per second this signing key may make (a ResolvedKey)."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if key is None:  # unauthenticated: refused by the permission check, never counted
            return True
        limit = self.limit_for(key)
        try:
            count = window_count(group=self.group, key_id=key.key_id)
        except (RedisError, OSError) as exc:
            metrics.READ_RATELIMIT_ERRORS.labels(endpoint=self.group).inc()
            logger.warning("read rate limit check failed; allowing (fail open)", exc_info=exc)
            return True
        if count <= limit:
            return True
        metrics.READ_RATELIMIT_REJECTIONS.labels(endpoint=self.group, tenant=key.tenant_slug).inc()
        reset_s = max(1, math.ceil(WINDOW_S - time.time() % WINDOW_S))
        raise ApiError(
            codes.RATE_LIMITED,
            f"More than {limit} {self.what} per second for this key; retry after Retry-After.",
            retry_after=reset_s,
            ratelimit_policy=f'"key";q={limit};w={WINDOW_S}',
            ratelimit=f'"key";r=0;t={reset_s}',
        )
