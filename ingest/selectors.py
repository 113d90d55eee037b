"""Reads of the ingest app."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from ingest.models import DeadLetter
from tenants.models import Tenant
from tenants.scope import system_scope

# Accepted, not enriched after this long: the sweeper wakes its drain again.
SWEEP_AFTER = timedelta(minutes=2)
SWEEP_LIMIT = 5000


@lru_cache(maxsize=4096)
def _slug(tenant_id: str) -> str:
    with system_scope("metrics-labels"):
        row = Tenant.objects.filter(id=tenant_id).values_list("slug", flat=True).first()
    return row or tenant_id


def tenant_slug(tenant_id: uuid.UUID | str) -> str:
    """The tenant's slug, for metric labels (slugs never change; cached per process)."""
    return _slug(str(tenant_id))


def deadletter_depths(*, tenant_id: uuid.UUID | str | None = None) -> dict[str, int]:
    """Unresolved dead-letter entries by tenant slug (every tenant, zeros included)."""
    with system_scope("dlq-depth"):
        tenants = Tenant.objects.all()
        if tenant_id is not None:
            tenants = tenants.filter(id=tenant_id)
        rows = tenants.annotate(
            depth=Count("deadletter", filter=Q(deadletter__resolved_at__isnull=True))
        ).values_list("slug", "depth")
        return dict(rows)


def deadletter_open_ids(
    *,
    tenant_id: uuid.UUID | str | None = None,
    ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[int]:
    """Ids of unresolved dead-letter entries, optionally narrowed.

    Filters: one tenant, among `ids`, dead-lettered (last failure) in [since, until).
    """
    with system_scope("dlq-replay"):
        qs = DeadLetter.objects.filter(resolved_at__isnull=True)
        if since is not None:
            qs = qs.filter(last_failed_at__gte=since)
        if until is not None:
            qs = qs.filter(last_failed_at__lt=until)
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        if ids:
            qs = qs.filter(id__in=ids)
        return list(qs.order_by("id").values_list("id", flat=True))


_SWEEP_SQL = """
SELECT tenant_id, count(*) FROM (
    SELECT tenant_id FROM ingest_event
    WHERE enriched_at IS NULL AND received_at < %s
      AND (enrich_retry_at IS NULL OR enrich_retry_at <= now())
    LIMIT %s
) due GROUP BY tenant_id
"""


def events_unenriched_by_tenant(
    *, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_LIMIT
) -> dict[str, int]:
    """Tenants with events accepted more than `older_than` ago, due and still not enriched.

    Returns {tenant_id: number of such events (at most `limit` counted in all)}; the sweeper wakes
    their drains. Events waiting for a retry or dead-lettered are not due, so a retry in flight is
    never started twice. Cross-tenant, so it runs in a named system scope.
    """
    cutoff = timezone.now() - older_than
    with system_scope("sweeper"), connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL, [cutoff, limit])
        return {str(tenant_id): count for tenant_id, count in cursor.fetchall()}


# Only tenants with something to show. Open entries are read by the partial open index; the
# inflow since `since` and the warnings by their (tenant_id, time) indexes.
_TENANT_TROUBLE_SQL = """
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


def tenants_in_trouble(
    *, since: datetime, reason: str
) -> list[tuple[uuid.UUID, str, int, int, int]]:
    """Tenants with open dead letters, or dead letters or ingestion warnings since `since`.

    Rows (tenant id, slug, open dead letters, dead letters since, warnings since), the largest
    inflow first. Cross-tenant, in a system scope named `reason` (reconcile's Health card).
    """
    with system_scope(reason), connection.cursor() as cursor:
        cursor.execute(_TENANT_TROUBLE_SQL, {"since": since})
        return cursor.fetchall()
