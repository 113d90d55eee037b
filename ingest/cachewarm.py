"""Warm a new web process's caches: the most recently used signing keys and their tenants' flags.

Without it every worker that starts (a deploy, a restart after `max_requests`) pays a cold lookup
(a transaction and a decrypt) for each key on its first use, and with thousands of active tenants
that is most of its first minutes. gunicorn.conf.py calls `caches_warm` in `post_worker_init`,
before the worker takes requests; a failure is logged and the worker starts cold.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from flags.selectors import flags_warm
from tenants import cachesync, keycache
from tenants.selectors import signing_keys_recent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmReport:
    """What a warm-up loaded and how long it took."""

    keys: int
    tenants: int
    seconds: float


def caches_warm(*, limit: int | None = None) -> WarmReport:
    """Load up to `limit` (CODEX_KEY_CACHE_WARM) recent keys and their tenants' flags.

    Never raises for a database failure: the process starts cold (logged).
    """
    limit = settings.CODEX_KEY_CACHE_WARM if limit is None else limit
    started = time.monotonic()
    if limit <= 0 or cachesync.short_ttl() <= 0:
        return WarmReport(0, 0, 0.0)
    try:
        connection.ensure_connection()
        cachesync.sync()  # the first poll forgets everything: before the snapshot, not after
        snap = cachesync.snapshot()
        keys = signing_keys_recent(limit=min(limit, settings.CODEX_KEY_CACHE_SIZE))
        for key in keys:
            keycache.put_absent(key.key_id, key, cachesync.token_at(snap, str(key.tenant_id)))
        tenants = flags_warm(tenant_ids={key.tenant_id for key in keys}, snap=snap)
    except DatabaseError as exc:
        logger.warning("cache warm-up failed; starting cold", extra={"error": str(exc)})
        return WarmReport(0, 0, time.monotonic() - started)
    report = WarmReport(len(keys), tenants, time.monotonic() - started)
    logger.info(
        "caches warmed",
        extra={"keys": report.keys, "tenants": report.tenants, "seconds": round(report.seconds, 2)},
    )
    return report
