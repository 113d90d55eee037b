"""Prometheus metrics of the tenants app: request authentication (signing keys)."""

from __future__ import annotations

from prometheus_client import Counter

# Named for the ingest API it guards (dashboards and alerts use this name); defined here because
# signing-key authentication belongs to tenants.
AUTH_FAILURES = Counter(
    "codex_ingest_auth_failures_total",
    "Signed requests refused by authentication, by error code.",
    ["code"],
)
