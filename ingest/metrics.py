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

# `source` is client text: cap the distinct label values per tenant (per process) so one
# tenant cannot blow up the number of series Prometheus has to hold.
MAX_SOURCES_PER_TENANT = 20
OTHER_SOURCE = "other"
_sources: dict[str, set[str]] = {}
_sources_lock = threading.Lock()


def source_label(tenant: str, source: str) -> str:
    """The `source` label value for a tenant's event: itself, or "other" past the cap."""
    with _sources_lock:
        seen = _sources.setdefault(tenant, set())
        if source in seen:
            return source
        if len(seen) < MAX_SOURCES_PER_TENANT:
            seen.add(source)
            return source
    return OTHER_SOURCE


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
AUTH_FAILURES = Counter(
    "codex_ingest_auth_failures_total",
    "Signed requests refused by authentication, by error code.",
    ["code"],
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
