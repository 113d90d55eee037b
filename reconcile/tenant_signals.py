"""Per-tenant signals for the Health card besides drift: dead letters and ingestion warnings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from tenants.scope import system_scope

# A tenant parking this many events in an hour is an incident, not a backlog.
DLQ_INFLOW_CRITICAL = 50
WINDOW = timedelta(hours=1)

# Only tenants with something to show. Open entries are read by the partial open index;
# the hour's inflow and warnings by their (tenant_id, time) indexes.
_SQL = """
SELECT * FROM (
    SELECT t.id, t.slug,
           (SELECT count(*) FROM ingest_deadletter d
             WHERE d.tenant_id = t.id AND d.resolved_at IS NULL) AS open_dead_letters,
           (SELECT count(*) FROM ingest_deadletter d
             WHERE d.tenant_id = t.id AND d.last_failed_at >= %(since)s) AS dlq_inflow,
           (SELECT count(*) FROM ingest_ingestwarning w
             WHERE w.tenant_id = t.id AND w.created_at >= %(since)s) AS warnings
    FROM tenants_tenant t
) s
WHERE open_dead_letters > 0 OR dlq_inflow > 0 OR warnings > 0
ORDER BY dlq_inflow DESC, open_dead_letters DESC, warnings DESC, slug
"""


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
    with system_scope(reason), connection.cursor() as cursor:
        cursor.execute(_SQL, {"since": now - WINDOW})
        return [TenantSignals(*row) for row in cursor.fetchall()]
