"""The fate of one event (GET /v1/events/<idempotency_key>): accepted, enriched, dead-lettered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ingest.models import DeadLetter, Event, IdempotencyKey
from tenants.scope import tenant_scope

ACCEPTED = "accepted"
ENRICHED = "enriched"
DEAD_LETTERED = "dead_lettered"
ERASED = "erased"
STATUSES = (ACCEPTED, ENRICHED, DEAD_LETTERED, ERASED)


@dataclass(frozen=True)
class EventStatus:
    """What happened to one of a tenant's events."""

    id: int
    idempotency_key: str
    type: str
    source: str
    status: str
    received_at: datetime
    enriched_at: datetime | None
    dead_letter: dict | None  # {"stage", "error_class", "failed_at", "attempts"} while open


def event_status_get(*, tenant_id: uuid.UUID | str, idempotency_key: str) -> EventStatus | None:
    """The tenant's event with this key and its status, or None (another tenant's too)."""
    with tenant_scope(tenant_id):
        # The key's claim gives the event's id and month: the ledger read prunes to one partition.
        claim = (
            IdempotencyKey.objects.filter(tenant_id=tenant_id, idempotency_key=idempotency_key)
            .values("event_id", "received_at", "erased_at")
            .first()
        )
        if claim is None:
            return None
        if claim["erased_at"] is not None:
            # Erased (ingest.services.erasure.events_erase): only the key is left, no event data.
            return EventStatus(
                id=claim["event_id"],
                idempotency_key=idempotency_key,
                type="",
                source="",
                status=ERASED,
                received_at=claim["received_at"],
                enriched_at=None,
                dead_letter=None,
            )
        event = (
            Event.objects.filter(
                tenant_id=tenant_id, id=claim["event_id"], received_at=claim["received_at"]
            )
            .only(
                "id",
                "idempotency_key",
                "type",
                "source",
                "received_at",
                "enriched_at",
            )
            .first()
        )
        if event is None:
            return None
        letter = None
        if event.enriched_at is None:
            letter = (
                DeadLetter.objects.filter(
                    tenant_id=tenant_id, event_id=event.id, resolved_at__isnull=True
                )
                .order_by("-last_failed_at")
                .first()
            )
    if event.enriched_at is not None:
        status = ENRICHED
    elif letter is not None:
        status = DEAD_LETTERED
    else:
        status = ACCEPTED
    return EventStatus(
        id=event.id,
        idempotency_key=event.idempotency_key,
        type=event.type,
        source=event.source,
        status=status,
        received_at=event.received_at,
        enriched_at=event.enriched_at,
        dead_letter=(
            {
                "stage": letter.stage,
                "error_class": letter.error_class,
                "attempts": letter.attempts,
                "failed_at": letter.last_failed_at,
            }
            if letter is not None and status == DEAD_LETTERED
            else None
        ),
    )
