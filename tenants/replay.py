"""Replay store: a webhook-id is accepted once per signing key while its timestamp is acceptable.

One Redis `SET NX EX` per signed request, in the shared cache (every process and instance sees
it). The key is `(key id, blake2b of the webhook-id)`, so an id of any length costs 32 bytes; it
lives until the request's timestamp leaves the tolerance window on any server (the timestamp +
TOLERANCE_S + CLOCK_SPREAD_S), after which the timestamp check refuses the request anyway.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

from codex.cache import thread_command

# Servers' clocks may differ by this much: an id is kept that much past its own window.
CLOCK_SPREAD_S = 60


def _cache_key(key_id: str, msg_id: str) -> str:
    digest = hashlib.blake2b(msg_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"sig:seen:{key_id}:{digest}"


def webhook_id_claim(*, key_id: str, msg_id: str, timestamp: int, tolerance_s: int) -> bool:
    """True the first time `msg_id` is used with this key in its window, False on a replay.

    Raises redis.exceptions.RedisError / OSError when the store cannot answer (the caller decides).
    """
    ttl = max(1, timestamp + tolerance_s + CLOCK_SPREAD_S - int(time.time()))
    key = cache.make_and_validate_key(_cache_key(key_id, msg_id))
    # A raw SET NX EX on the thread's connection: cache.add would pickle the value and wrap the
    # call, a pooled client call checks and retries (hot path: once per signed request).
    return thread_command(cache, key, "SET", key, b"1", "NX", "EX", ttl) is not None
