"""Reads of the ingest app."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache

from django.db.models import Count, Q

from ingest.models import DeadLetter
from tenants.models import Tenant
from tenants.scope import system_scope


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
    tenant_slug: str | None = None,
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
        if tenant_slug is not None:
            qs = qs.filter(tenant__slug=tenant_slug)
        if ids:
            qs = qs.filter(id__in=ids)
        return list(qs.order_by("id").values_list("id", flat=True))
