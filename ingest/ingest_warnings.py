"""Ingestion warnings: what authenticated tenants sent that was refused, kept for 7 days.

Recording is best effort and bounded: it never turns a refusal into an error (Redis or
PostgreSQL trouble is logged and counted), beyond `CODEX_INGEST_WARNINGS_PER_MINUTE` rows per
tenant and minute only one in `SAMPLE_EVERY` is written, and past a tenant's absolute daily caps
(`CODEX_INGEST_WARNINGS_ROWS_PER_DAY` rows, `CODEX_INGEST_WARNINGS_BYTES_PER_DAY` bytes, UTC days)
none is. One Lua call on Redis decides all three atomically. `codex_ingest_warnings_total
{tenant,code}` counts every warning, `codex_ingest_warnings_dropped_total{tenant,reason}` those
not written (sampled, rows_cap, bytes_cap).
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
    subject_id: str = ""  # the refused item's subject_id, when it had one (erasure finds it)


def truncate_utf8(text: str, limit: int = MAX_ITEM_BYTES) -> str:
    """At most `limit` UTF-8 bytes of `text`, cut on a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text.encode("utf-8", "replace").decode("utf-8")
    return data[:limit].decode("utf-8", "ignore")


def body_text(body: bytes) -> str:
    """A refused request body as text, no longer than storing keeps (a few bytes spare)."""
    return body[: MAX_ITEM_BYTES + 4].decode("utf-8", "replace")


def item_text(raw: object) -> str:
    """A refused JSON item as compact text (anything JSON can hold)."""
    try:
        return orjson.dumps(raw).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits and similar: the stdlib spells them (validation allowed them).
        import json

        return json.dumps(raw, ensure_ascii=False, default=str)


def subject_of(raw: object) -> str:
    """The subject_id a refused item carried, if it is one the ledger could have held, else ""."""
    subject = raw.get("subject_id") if isinstance(raw, dict) else None
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255 or "\x00" in subject:
        return ""
    try:
        subject.encode("utf-8")  # a lone surrogate: no ledger row could carry it
    except UnicodeEncodeError:
        return ""
    return subject


# Per new warning, in order: within the minute's budget or the 1-in-SAMPLE_EVERY sample, then
# within the tenant's rows and bytes of the UTC day. Answers one verdict per warning (0 stored,
# 1 sampled out, 2 over the daily rows cap, 3 over the daily bytes cap) and counts only what is
# stored against the day, in one atomic call: concurrent processes can never overshoot a cap.
_BUDGET_LUA = """
local n = #ARGV - 4
local after = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], 120)
local limit, every = tonumber(ARGV[1]), tonumber(ARGV[2])
local rows_cap, bytes_cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local rows = tonumber(redis.call('HGET', KEYS[2], 'rows') or '0')
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local verdicts = {}
for i = 1, n do
  local count = after - n + i
  local size = tonumber(ARGV[4 + i])
  if count > limit and (count - limit) % every ~= 0 then
    verdicts[i] = 1
  elseif rows >= rows_cap then
    verdicts[i] = 2
  elseif bytes + size > bytes_cap then
    verdicts[i] = 3
  else
    rows = rows + 1
    bytes = bytes + size
    verdicts[i] = 0
  end
end
redis.call('HSET', KEYS[2], 'rows', rows, 'bytes', bytes)
redis.call('EXPIRE', KEYS[2], 172800)
return verdicts
"""
_DROP_REASONS = {1: "sampled", 2: "rows_cap", 3: "bytes_cap"}
_scripts: dict[int, object] = {}


def _budget(tenant_id: str, sizes: list[int], *, now: float | None = None) -> list[int]:
    """The verdict of each new warning of this tenant (0: store it; else _DROP_REASONS)."""
    now = time.time() if now is None else now
    minute_key = cache.make_key(f"ingest-warnings:{tenant_id}:{int(now // 60)}")
    day_key = cache.make_key(f"ingest-warnings-day:{tenant_id}:{int(now // 86400)}")
    client = redis_client(cache, minute_key)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_BUDGET_LUA)
    args = [
        settings.CODEX_INGEST_WARNINGS_PER_MINUTE,
        SAMPLE_EVERY,
        settings.CODEX_INGEST_WARNINGS_ROWS_PER_DAY,
        settings.CODEX_INGEST_WARNINGS_BYTES_PER_DAY,
        *sizes,
    ]
    return [int(v) for v in script(keys=[minute_key, day_key], args=args)]


_INSERT_SQL = (
    "INSERT INTO ingest_ingestwarning "
    "(tenant_id, created_at, code, message, request_id, key_id, idempotency_key, item, "
    "subject_id) "
    "SELECT %s::uuid, %s, w.code, w.message, %s, %s, w.idempotency_key, w.item, w.subject_id "
    "FROM jsonb_to_recordset(%s::jsonb) "
    "AS w(code text, message text, idempotency_key text, item text, subject_id text)"
)


def _stored_bytes(row: dict[str, str]) -> int:
    """What a row costs against the daily byte cap: the UTF-8 size of its text columns."""
    return sum(len(value.encode("utf-8", "replace")) for value in row.values())


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
    rows = [
        {
            "code": e.code[:64],
            "message": e.message[:MAX_MESSAGE_CHARS],
            "idempotency_key": (e.idempotency_key or "")[:255],
            "item": truncate_utf8(e.item),
            "subject_id": truncate_utf8(e.subject_id[:255]),
        }
        for e in entries
    ]
    try:
        verdicts = _budget(tenant_id, [_stored_bytes(row) for row in rows])
    except RedisError as exc:
        # Without the budget we cannot bound the writes: drop these rather than flood the table.
        metrics.WARNING_RECORD_ERRORS.labels(stage="redis").inc()
        logger.warning("ingestion warnings not recorded: Redis unavailable", exc_info=exc)
        return 0
    for verdict, n in Counter(verdicts).items():
        if verdict:
            reason = _DROP_REASONS[verdict]
            metrics.WARNINGS_DROPPED.labels(tenant=tenant_slug, reason=reason).inc(n)
    rows = [row for row, verdict in zip(rows, verdicts, strict=True) if verdict == 0]
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
