"""Prometheus metrics of the tenants app: request authentication and the in-process caches."""

from __future__ import annotations

from prometheus_client import Counter

# Named for the ingest API it guards (dashboards and alerts use this name); defined here because
# signing-key authentication belongs to tenants.
AUTH_FAILURES = Counter(
    "codex_ingest_auth_failures_total",
    "Signed requests refused by authentication, by error code.",
    ["code"],
)

SIGNATURE_V1 = Counter(
    "codex_auth_signature_v1_total",
    "Requests accepted on a v1 signature (POST /v1/events while signatureV1Allowed), by tenant.",
    ["tenant"],
)

REPLAY_STORE_ERRORS = Counter(
    "codex_auth_replay_store_errors_total",
    "Signed requests whose webhook-id could not be checked in Redis (accepted: fail open).",
)

CACHE_SYNC_ERRORS = Counter(
    "codex_cache_sync_errors_total",
    "Failed polls of the cache versions (cached keys and flags fall back to the short TTL).",
)

CACHE_INVALIDATIONS = Counter(
    "codex_cache_invalidations_total",
    "Tenant scopes whose cached keys, sources or flags a poll found changed (this process).",
)
