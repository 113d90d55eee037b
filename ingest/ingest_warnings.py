"""Ingestion warnings: what authenticated tenants sent that was refused, kept for 7 days.

Recording is best effort and bounded: it never turns a refusal into an error (Redis or
PostgreSQL trouble is logged and counted), and beyond `CODEX_INGEST_WARNINGS_PER_MINUTE` rows
per tenant and minute only one in `SAMPLE_EVERY` is written. The counter
`codex_ingest_warnings_total{tenant,code}` counts every warning, written or not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.utils import timezone
from redis.exceptions import RedisError

from codex import context
from codex.cache import redis_client
from ingest import metrics
from ingest.models import IngestWarning
from tenants.scope import system_scope, tenant_scope

logger = logging.getLogger(__name__)

MAX_ITEM_BYTES = 8 * 1024
MAX_MESSAGE_CHARS = 1000
SAMPLE_EVERY = 100  # beyond the per-minute budget, keep one warning in this many


@dataclass(frozen=True)
class WarningEntry:
    """One refused item or request."""

    code: str
    message: str
    item: str = ""  # the item or body as text (truncated when stored)
    idempotency_key: str = ""


def truncate_utf8(text: str, limit: int = MAX_ITEM_BYTES) -> str:
    """At most `limit` UTF-8 bytes of `text`, cut on a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text.encode("utf-8", "replace").decode("utf-8")
    return data[:limit].decode("utf-8", "ignore")


def item_text(raw: object) -> str:
    """A refused JSON item as compact text (anything JSON can hold)."""
    try:
        return orjson.dumps(raw).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits and similar: the stdlib spells them (validation allowed them).
        import json

        return json.dumps(raw, ensure_ascii=False, default=str)


def _budget(tenant_id: str, n: int) -> list[bool]:
    """Which of `n` new warnings of this tenant to write (the per-minute budget, then sampled)."""
    minute = int(time.time() // 60)
    key = cache.make_key(f"ingest-warnings:{tenant_id}:{minute}")
    client = redis_client(cache, key)
    pipe = client.pipeline(transaction=False)
    pipe.incrby(key, n)
    pipe.expire(key, 120)
    after = int(pipe.execute()[0])
    limit = settings.CODEX_INGEST_WARNINGS_PER_MINUTE
    keep = []
    for count in range(after - n + 1, after + 1):
        keep.append(count <= limit or (count - limit) % SAMPLE_EVERY == 0)
    return keep


_INSERT_SQL = (
    "INSERT INTO ingest_ingestwarning "
    "(tenant_id, created_at, code, message, request_id, key_id, idempotency_key, item) "
    "SELECT %s::uuid, %s, w.code, w.message, %s, %s, w.idempotency_key, w.item "
    "FROM jsonb_to_recordset(%s::jsonb) "
    "AS w(code text, message text, idempotency_key text, item text)"
)


def ingest_warnings_record(
    *, tenant_id: uuid.UUID | str, tenant_slug: str, key_id: str, entries: list[WarningEntry]
) -> int:
    """Count and (within the budget) store these warnings; return how many rows were written.

    Never raises for Redis or PostgreSQL trouble: a warning is worth less than the answer.
    """
    if not entries:
        return 0
    for code, n in Counter(e.code for e in entries).items():
        metrics.WARNINGS.labels(tenant=tenant_slug, code=code).inc(n)
    tenant_id = str(tenant_id)
    try:
        keep = _budget(tenant_id, len(entries))
    except RedisError as exc:
        # Without the budget we cannot bound the writes: drop these rather than flood the table.
        metrics.WARNING_RECORD_ERRORS.labels(stage="redis").inc()
        logger.warning("ingestion warnings not recorded: Redis unavailable", exc_info=exc)
        return 0
    rows = [
        {
            "code": e.code[:64],
            "message": e.message[:MAX_MESSAGE_CHARS],
            "idempotency_key": (e.idempotency_key or "")[:255],
            "item": truncate_utf8(e.item),
        }
        for e, kept in zip(entries, keep, strict=True)
        if kept
    ]
    if not rows:
        return 0
    # NUL cannot be stored in text; lone surrogates were already replaced by truncate_utf8.
    payload = orjson.dumps(rows).decode().replace("\\u0000", "\\ufffd")
    try:
        with tenant_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                [
                    tenant_id,
                    timezone.now(),
                    (context.request_id.get() or "")[:128],
                    key_id[:64],
                    payload,
                ],
            )
    except DatabaseError as exc:
        metrics.WARNING_RECORD_ERRORS.labels(stage="database").inc()
        logger.warning("ingestion warnings not recorded: database error", exc_info=exc)
        return 0
    return len(rows)


def ingest_warnings_prune(*, now: datetime | None = None) -> int:
    """Delete warnings older than CODEX_INGEST_WARNINGS_KEEP_DAYS (every tenant); return count."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CODEX_INGEST_WARNINGS_KEEP_DAYS)
    with system_scope("warnings-prune"):
        deleted, _ = IngestWarning.objects.filter(created_at__lt=cutoff).delete()
    logger.info("ingestion warnings pruned", extra={"deleted": deleted})
    return deleted


def ingest_warnings_recent(*, since: datetime, reason: str = "admin") -> dict[str, int]:
    """Warnings per tenant slug since `since` (tenants with none left out)."""
    with system_scope(reason), connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.slug, count(*) FROM ingest_ingestwarning w "
            "JOIN tenants_tenant t ON t.id = w.tenant_id "
            "WHERE w.created_at >= %s GROUP BY t.slug",
            [since],
        )
        return dict(cursor.fetchall())
