"""Prometheus metrics of the ingest app (correct under prometheus_client multiprocess mode).

Counters and the histogram are summed across gunicorn and Celery processes by /metrics. The one
gauge, the unresolved dead-letter depth, is a fact of the database rather than of a process: it is
recomputed from PostgreSQL by whoever last changed it (a DLQ write, a replay) and by the sweeper
every minute, and exported with multiprocess_mode="mostrecent" so the newest value wins and
several processes never add their copies up. Tenant labels carry the tenant's slug.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

# `source` is client text: cap the distinct label values per tenant so one tenant cannot blow up
# the number of series Prometheus holds. The cap is shared by every process and survives restarts:
# the first MAX_SOURCES_PER_TENANT sources a tenant uses are registered in a Redis set (kept while
# the tenant keeps adding, SOURCES_TTL_S), and every other source is counted as "other". Each
# process remembers its answers, so a request pays Redis only for a (tenant, source) it has not
# seen yet. Redis unreachable: a per-process cap, as before.
MAX_SOURCES_PER_TENANT = 20
OTHER_SOURCE = "other"
SOURCES_TTL_S = 30 * 24 * 3600
_SOURCES_LUA = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
_labels: dict[tuple[str, str], str] = {}
_fallback: dict[str, set[str]] = {}
_sources_lock = threading.Lock()
_scripts: dict[int, object] = {}


def _registered(tenant: str, source: str) -> bool:
    from django.core.cache import cache

    from codex.cache import redis_client

    key = cache.make_and_validate_key(f"metrics:sources:{tenant}")
    client = redis_client(cache, key)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SOURCES_LUA)
    return bool(script(keys=[key], args=[source, MAX_SOURCES_PER_TENANT, SOURCES_TTL_S]))


def source_label(tenant: str, source: str) -> str:
    """The `source` label value for a tenant's event: itself, or "other" past the shared cap."""
    label = _labels.get((tenant, source))
    if label is not None:
        return label
    try:
        allowed = _registered(tenant, source)
    except (RedisError, OSError):
        with _sources_lock:  # this process's own cap until Redis answers again
            seen = _fallback.setdefault(tenant, set())
            if source in seen or len(seen) < MAX_SOURCES_PER_TENANT:
                seen.add(source)
                return source
        return OTHER_SOURCE
    label = source if allowed else OTHER_SOURCE
    with _sources_lock:
        if len(_labels) > 50_000:
            _labels.clear()  # bound; the Redis set keeps the answers
        _labels[(tenant, source)] = label
    return label


def source_labels_forget() -> None:
    """Forget this process's remembered answers (a restart, in tests)."""
    with _sources_lock:
        _labels.clear()
        _fallback.clear()


REQUESTS = Counter(
    "codex_ingest_requests_total",
    "POST /v1/events requests by outcome (accepted, duplicate, conflict, batch, rejected, "
    "unauthorized, rate_limited, unavailable, error).",
    ["outcome"],
)
EVENTS = Counter(
    "codex_ingest_events_total",
    "Events by tenant, source and outcome (accepted, duplicate, conflict, rejected).",
    ["tenant", "source", "outcome"],
)
REQUEST_DURATION = Histogram(
    "codex_ingest_request_duration_seconds",
    "Wall time of POST /v1/events, authentication to response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
)
RATELIMIT_REJECTIONS = Counter(
    "codex_ratelimit_rejections_total",
    "Requests answered 429 by the per-tenant rate limit.",
    ["tenant"],
)
RATELIMIT_ERRORS = Counter(
    "codex_ratelimit_errors_total",
    "Rate-limit checks that failed (cache unreachable) and were allowed through (fail open).",
)
ENQUEUE_ERRORS = Counter(
    "codex_ingest_enqueue_errors_total",
    "Enrichment drain wake-ups that could not be published (the sweeper wakes those drains).",
)
ENRICH = Counter(
    "codex_enrich_events_total",
    "Events handled by enrichment, by outcome (enriched, skipped, retried, dead_lettered).",
    ["outcome"],
)
DLQ_EVENTS = Counter(
    "codex_dlq_events_total",
    "Events moved to the dead-letter queue, by tenant and stage.",
    ["tenant", "stage"],
)
DLQ_DEPTH = Gauge(
    "codex_dlq_unresolved_events",
    "Unresolved dead-letter entries per tenant, recomputed from PostgreSQL.",
    ["tenant"],
    multiprocess_mode="mostrecent",
)
SWEEP_ENQUEUED = Counter(
    "codex_ingest_sweep_enqueued_total",
    "Events whose drain the sweeper woke (accepted, due, and not enriched in time).",
)
AMOUNT_UNUSABLE = Counter(
    "codex_enrich_amount_unusable_total",
    "Events enriched with a null amount_minor because their amount could not be an amount "
    "(not a number, not finite, an absurd exponent, beyond 64 bits).",
)

# Webhook sources (ingest.webhooks): one series per source an operator created, so the labels stay
# bounded; deliveries to ids that are no source count under source="unknown".
SOURCE_DELIVERIES = Counter(
    "codex_ingest_source_deliveries_total",
    "POST /v1/sources/<id>/webhooks deliveries by tenant, kind, source and outcome (accepted, "
    "duplicate, rejected, unauthorized, not_found, gone, suspended, rate_limited, too_large, "
    "unavailable, error).",
    ["tenant", "kind", "source", "outcome"],
)
SOURCE_SIGNATURE_FAILURES = Counter(
    "codex_ingest_source_signature_failures_total",
    "Source deliveries refused for their signature, by tenant, kind, source and code "
    "(missing_signature, invalid_signature, timestamp_out_of_tolerance).",
    ["tenant", "kind", "source", "code"],
)
SOURCE_UNVERIFIED_LIMITED = Counter(
    "codex_ingest_source_unverified_limited_total",
    "Source deliveries answered 429 before any lookup because too many unverified deliveries "
    "came for that source id or from that client address this second, by scope (source, "
    "address).",
    ["scope"],
)
SOURCE_DELIVERY_DURATION = Histogram(
    "codex_ingest_source_delivery_duration_seconds",
    "Wall time of a webhook source delivery, request to answer, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
WARNINGS = Counter(
    "codex_ingest_warnings_total",
    "Ingestion warnings of authenticated tenants (refused batch items and requests), by tenant "
    "and code; every one counts, sampled or not (ingest/ingest_warnings.py).",
    ["tenant", "code"],
)
WARNING_RECORD_ERRORS = Counter(
    "codex_ingest_warnings_record_errors_total",
    "Ingestion warnings not recorded because Redis or PostgreSQL failed (stage).",
    ["stage"],
)
WARNINGS_DROPPED = Counter(
    "codex_ingest_warnings_dropped_total",
    "Ingestion warnings counted but not stored, by tenant and reason: sampled (past the "
    "per-minute budget), rows_cap or bytes_cap (past the tenant's daily caps).",
    ["tenant", "reason"],
)
SYNC_BATCHES = Counter(
    "codex_sync_batches",
    "SDK background-sync batches (POST /v1/events from User-Agent codex-sdk/*) by outcome: "
    "success (every event stored or duplicate), rejected (4xx, or some events rejected or in "
    "conflict), error (5xx or 429: nothing stored, the SDK retries).",
    ["tenant", "outcome"],
)

SYNC_OUTCOMES = ("success", "rejected", "error")
SDK_USER_AGENT_PREFIX = "codex-sdk/"


def is_sdk_request(request) -> bool:
    """True when the request comes from the Codex SDK (its User-Agent is codex-sdk/<version>)."""
    return request.META.get("HTTP_USER_AGENT", "").startswith(SDK_USER_AGENT_PREFIX)


def sync_batch_outcome(status_code: int, body: object = None) -> str:
    """Classify an answered POST /v1/events for codex_sync_batches_total.

    success: 2xx with no event rejected or in conflict; rejected: a 4xx other than 429, or a batch
    answer with rejected or conflicting items; error: 5xx or 429 (nothing stored, sync retries).
    """
    if status_code >= 500 or status_code == 429:
        return "error"
    if status_code >= 400:
        return "rejected"
    if isinstance(body, dict) and (body.get("rejected") or body.get("conflicts")):
        return "rejected"
    return "success"


def record_sync_batch(tenant_slug: str, outcome: str) -> None:
    """Count one SDK batch; POST /v1/events calls this for codex-sdk/* requests."""
    if outcome not in SYNC_OUTCOMES:
        raise ValueError(f"outcome must be one of {SYNC_OUTCOMES}, not {outcome!r}")
    SYNC_BATCHES.labels(tenant=tenant_slug or "unknown", outcome=outcome).inc()


def record_sync_response(request, response, tenant_slug: str | None) -> None:
    """Count `response` as an SDK batch when `request` came from the SDK (one-line hook)."""
    if not is_sdk_request(request):
        return
    body = getattr(response, "data", None)
    record_sync_batch(tenant_slug or "unknown", sync_batch_outcome(response.status_code, body))


# Data lifecycle (ingest.services.{retention,erasure,offboard}): what they removed.
LIFECYCLE_DELETED = Counter(
    "codex_ingest_lifecycle_deleted_rows_total",
    "Rows deleted by the data lifecycle, by reason (retention, erasure, offboard) and table.",
    ["reason", "table"],
)
LIFECYCLE_PARTITIONS_DROPPED = Counter(
    "codex_ingest_lifecycle_dropped_partitions_total",
    "Month partitions of the ledger and events_enriched dropped whole by retention.",
)
LIFECYCLE_LAST_RETENTION = Gauge(
    "codex_ingest_retention_last_run_timestamp_seconds",
    "Unix time of the last completed retention pass (not a dry run).",
    multiprocess_mode="mostrecent",
)
