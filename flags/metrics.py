"""Prometheus metrics of runtime config and of SDK background sync (multiprocess-safe counters)."""

from __future__ import annotations

from prometheus_client import Counter

CONFIG_READS = Counter(
    "codex_config_reads",
    "GET /config answers by tenant and outcome (ok | not_modified | denied | error).",
    ["tenant", "outcome"],
)
SYNC_BATCHES = Counter(
    "codex_sync_batches",
    "SDK background-sync batches (POST /v1/events from User-Agent codex-sdk/*) by outcome: "
    "success (every event stored or duplicate), rejected (4xx, or some events rejected or in "
    "conflict), error (5xx or 429: nothing stored, the SDK retries).",
    ["tenant", "outcome"],
)
FLAG_CHANGES = Counter(
    "codex_flags_changes",
    "Flag changes written through flags.services, by key and scope (global | tenant).",
    ["key", "scope"],
)
FLAG_CACHE_ERRORS = Counter(
    "codex_flags_cache_errors",
    "Redis errors while reading or invalidating cached flags (reads then fall back).",
    ["op"],
)
FLAG_READ_FALLBACKS = Counter(
    "codex_flags_read_fallbacks",
    "Effective-flag reads not served from the cache: db (cache down) or defaults (db down too).",
    ["source"],
)

SYNC_OUTCOMES = ("success", "rejected", "error")
SDK_USER_AGENT_PREFIX = "codex-sdk/"


def is_sdk_request(request) -> bool:
    """True when the request comes from the Codex SDK (its User-Agent is codex-sdk/<version>)."""
    return request.headers.get("User-Agent", "").startswith(SDK_USER_AGENT_PREFIX)


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
    """Count one SDK batch; ingest's POST /v1/events calls this for codex-sdk/* requests."""
    if outcome not in SYNC_OUTCOMES:
        raise ValueError(f"outcome must be one of {SYNC_OUTCOMES}, not {outcome!r}")
    SYNC_BATCHES.labels(tenant=tenant_slug or "unknown", outcome=outcome).inc()


def record_sync_response(request, response, tenant_slug: str | None) -> None:
    """Count `response` as an SDK batch when `request` came from the SDK (one-line hook)."""
    if not is_sdk_request(request):
        return
    body = getattr(response, "data", None)
    record_sync_batch(tenant_slug or "unknown", sync_batch_outcome(response.status_code, body))
