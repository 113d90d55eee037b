"""Limits on a source route's unverified traffic, checked before any source lookup.

A delivery that fails before its signature verifies (no such source, a missing or wrong
signature, a stale timestamp) counts against two one-second windows in Redis: its source id's and
its client address's (an IPv6 client's /64). While either window is full, deliveries to that
source id or from that address are answered 429 before a lookup, a secret decrypt or a key-cache
entry is spent on them. Signed deliveries never count, so a busy source is never throttled here
(its own limit, sourceRatePerSec, applies after the signature). Redis trouble fails open.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from codex import error_codes as codes
from codex.cache import redis_client
from ingest import metrics

logger = logging.getLogger(__name__)

WINDOW_S = 1
_MAX_SOURCE_ID_LEN = 64  # our ids are 61 characters; a longer one is counted by its prefix


def address_key(address: str) -> str:
    """The address a client is counted under: itself, or an IPv6 client's /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _windows(source_id: str, address: str, window: int) -> list[tuple[str, str, int]]:
    """(scope, Redis key, limit) of the two windows a delivery counts in."""
    return [
        (
            "source",
            cache.make_key(f"src-unverified:src:{source_id[:_MAX_SOURCE_ID_LEN]}:{window}"),
            settings.CODEX_SOURCE_UNVERIFIED_PER_SEC,
        ),
        (
            "address",
            cache.make_key(f"src-unverified:addr:{address_key(address)}:{window}"),
            settings.CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC,
        ),
    ]


def unverified_check(*, source_id: str, address: str) -> None:
    """rate_limited (Retry-After) while the source id's or the address's window is full."""
    now = time.time()
    window = int(now) // WINDOW_S
    windows = _windows(source_id, address, window)
    try:
        counts = redis_client(cache, windows[0][1]).mget([key for _, key, _ in windows])
    except (RedisError, OSError) as exc:
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("unverified source limit check failed; allowing (fail open)", exc_info=exc)
        return
    for (scope, _key, limit), count in zip(windows, counts, strict=True):
        if count is not None and int(count) >= limit:
            metrics.SOURCE_UNVERIFIED_LIMITED.labels(scope=scope).inc()
            reset_s = min(WINDOW_S, max(1, math.ceil((window + 1) * WINDOW_S - now)))
            raise codes.RATE_LIMITED.error(
                f"More than {limit} unverified deliveries per second from this "
                f"{'address' if scope == 'address' else 'source id'}; retry after the given "
                "seconds.",
                retry_after=reset_s,
            )


def unverified_count(*, source_id: str, address: str) -> None:
    """Count one delivery that failed before its signature verified (fail open)."""
    windows = _windows(source_id, address, int(time.time()) // WINDOW_S)
    try:
        pipe = redis_client(cache, windows[0][1]).pipeline(transaction=False)
        for _scope, key, _limit in windows:
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + 1)
        pipe.execute()
    except (RedisError, OSError) as exc:
        metrics.RATELIMIT_ERRORS.inc()
        logger.warning("unverified source delivery not counted (fail open)", exc_info=exc)
