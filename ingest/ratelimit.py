"""Per-tenant request rate limit on the Redis cache (django-ratelimit), failing open on errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from flags.selectors import effective_flags
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
    """Requests per second the tenant may send (runtime flag ingestRatePerSec)."""
    return int(effective_flags(tenant_id=tenant_id)["ingestRatePerSec"])


def check(*, tenant_id, limit: int) -> Decision:
    """Count one request against the tenant's window; fail open if the cache errors."""
    tenant_key = str(tenant_id)
    try:
        usage = get_usage(
            None,  # the key function below needs no request
            group=GROUP,
            key=lambda _group, _request: tenant_key,
            rate=(limit, WINDOW_S),
            increment=True,
        )
    except (RedisError, OSError) as exc:
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("rate limit check failed; allowing (fail open)", exc_info=exc)
        return Decision(limited=False, limit=limit, remaining=None, reset_s=WINDOW_S)
    if usage is None or usage.get("limit") == 0:
        # django-ratelimit's own "could not read the counter": also fail open.
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("rate limit counter unavailable; allowing (fail open)")
        return Decision(limited=False, limit=limit, remaining=None, reset_s=WINDOW_S)
    reset_s = max(1, int(usage["time_left"]) + 1) if usage["time_left"] >= 0 else WINDOW_S
    reset_s = min(reset_s, WINDOW_S)
    remaining = max(0, limit - int(usage["count"]))
    return Decision(
        limited=bool(usage["should_limit"]), limit=limit, remaining=remaining, reset_s=reset_s
    )
