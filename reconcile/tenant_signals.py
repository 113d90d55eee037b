"""Per-tenant signals for the Health card besides drift: dead letters and ingestion warnings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from ingest.selectors import tenants_in_trouble

# A tenant parking this many events in an hour is an incident, not a backlog.
DLQ_INFLOW_CRITICAL = 50
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class TenantSignals:
    """One tenant's dead letters (open, parked in the last hour) and last hour's warnings."""

    tenant_id: uuid.UUID
    slug: str
    open_dead_letters: int
    dlq_inflow_1h: int
    warnings_1h: int

    @property
    def warnings_spiking(self) -> bool:
        """More ingestion warnings in the last hour than CODEX_INGEST_WARNINGS_SPIKE_PER_HOUR."""
        return self.warnings_1h > settings.CODEX_INGEST_WARNINGS_SPIKE_PER_HOUR


def tenant_signals(*, now: datetime, reason: str = "reconcile") -> list[TenantSignals]:
    """Every tenant with open dead letters, DLQ inflow or ingestion warnings in the last hour."""
    # ingest's tables, so ingest's selector reads them.
    return [TenantSignals(*row) for row in tenants_in_trouble(since=now - WINDOW, reason=reason)]
