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

SIGNATURE_V1 = Counter(
    "codex_auth_signature_v1_total",
    "Requests accepted on a v1 signature (POST /v1/events while signatureV1Allowed), by tenant.",
    ["tenant"],
)

REPLAY_STORE_ERRORS = Counter(
    "codex_auth_replay_store_errors_total",
    "Signed requests whose webhook-id could not be checked in Redis (accepted: fail open).",
)
