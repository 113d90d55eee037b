"""Prometheus metrics of the reconcile app (correct under prometheus_client multiprocess mode).

The nightly job runs in a Celery worker while /metrics is served by gunicorn: the gauges are
facts of the last pass, so they use multiprocess modes that pick one value instead of adding the
copies of several processes up ("mostrecent" for the per-tenant drift, "max" for the newest
completion time). Tenant labels carry the tenant's slug.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DRIFT = Gauge(
    "codex_reconcile_drift_ratio",
    "Per tenant, the largest (accepted - enriched) / accepted of its last reconcile run "
    "(0.01 = 1%).",
    ["tenant"],
    multiprocess_mode="mostrecent",
)
LAST_RUN = Gauge(
    "codex_reconcile_last_run_timestamp_seconds",
    "Unix time at which the last reconcile pass finished without errors.",
    multiprocess_mode="max",
)
RUNS = Counter(
    "codex_reconcile_runs_total",
    "Tenant-day reconciliations by outcome (ok, error).",
    ["outcome"],
)
SOURCE_MISSING = Gauge(
    "codex_reconcile_source_missing_events",
    "Per webhook source, events its platform has for the last reconciled day that the ledger "
    "still lacks (missing_at_ingest minus repaired).",
    ["source"],
    multiprocess_mode="mostrecent",
)
REPAIRED = Counter(
    "codex_reconcile_repaired_events_total",
    "Events a reconcile repair found pending (no events_enriched row, no open dead letter), by "
    "trigger (command, nightly) and outcome (reenriched; failed: enrichment failed again, left "
    "due to the drain's retries and dead-letter queue; error: the repair itself failed).",
    ["trigger", "outcome"],
)
