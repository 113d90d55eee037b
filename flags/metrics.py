"""Prometheus metrics of runtime config (multiprocess-safe counters)."""

from __future__ import annotations

from prometheus_client import Counter

CONFIG_READS = Counter(
    "codex_config_reads",
    "GET /config answers by tenant and outcome (ok | not_modified | denied | rate_limited | "
    "error).",
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
