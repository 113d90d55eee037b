"""Reads for webhook sources: which ledger keys exist (conflicting retries, reconcile)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from ingest.models import IdempotencyKey
from tenants.scope import tenant_scope


def event_ids_by_key(*, tenant_id: uuid.UUID | str, keys: Iterable[str]) -> dict[str, int]:
    """{idempotency_key: event id} for those of `keys` the tenant's ledger holds."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, int] = {}
    with tenant_scope(tenant_id):
        for start in range(0, len(wanted), 1000):
            # The idempotency table holds every key the ledger was given (the ledger has no
            # index on the key since it is partitioned).
            rows = IdempotencyKey.objects.filter(
                tenant_id=tenant_id, idempotency_key__in=wanted[start : start + 1000]
            ).values_list("idempotency_key", "event_id")
            found.update(dict(rows))
    return found
