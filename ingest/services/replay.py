"""Replaying dead letters: enrich the events again, resolve on success, audit every replay."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from ingest.models import DeadLetter
from ingest.services.deadletters import error_parts
from ingest.services.enrich import events_enrich
from tenants.audit import audit_record
from tenants.scope import system_scope, tenant_scope


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one dead-letter entry did."""

    entry_id: int
    tenant_id: uuid.UUID
    event_id: int
    outcome: str  # resolved | failed
    error: str = ""


def deadletter_replay(*, entry_ids: Iterable[int], actor: str, user=None) -> list[ReplayResult]:
    """Re-run enrichment for open dead-letter entries; resolve on success; audit each replay."""
    with system_scope("dlq-replay"):
        entries = list(
            DeadLetter.objects.filter(id__in=list(entry_ids), resolved_at__isnull=True)
            .order_by("id")
            .values("id", "tenant_id", "event_id", "stage", "attempts")
        )
    results: list[ReplayResult] = []
    for entry in entries:
        tenant_id, event_id = entry["tenant_id"], entry["event_id"]
        outcome = events_enrich(tenant_id=tenant_id, event_ids=[event_id])
        exc = outcome.failed.get(event_id)
        if exc is None:
            result = ReplayResult(entry["id"], tenant_id, event_id, "resolved")
        else:
            error_class, message = error_parts(exc)
            with tenant_scope(tenant_id):
                DeadLetter.objects.filter(tenant_id=tenant_id, id=entry["id"]).update(
                    attempts=entry["attempts"] + 1,
                    last_failed_at=timezone.now(),
                    error_class=error_class,
                    error_message=message,
                )
            result = ReplayResult(entry["id"], tenant_id, event_id, "failed", f"{error_class}")
        with tenant_scope(tenant_id):
            after = DeadLetter.objects.filter(tenant_id=tenant_id, id=entry["id"]).values(
                "attempts", "resolved_at"
            )[0]
        audit_record(
            actor=actor,
            user=user,
            action="dlq.replay",
            tenant_id=tenant_id,
            target=f"deadletter:{entry['id']} event:{event_id}",
            old={"resolved_at": None, "attempts": entry["attempts"]},
            new={
                "outcome": result.outcome,
                "attempts": after["attempts"],
                "resolved_at": after["resolved_at"].isoformat() if after["resolved_at"] else None,
                "error": result.error or None,
            },
        )
        results.append(result)
    return results
