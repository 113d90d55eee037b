"""Erasure: a subject's events and everything derived from them go; the keys stay, marked."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from ingest.services.purge import BATCH, deleted_count, events_delete
from tenants.audit import audit_record

logger = logging.getLogger(__name__)


def subject_digest(subject_id: str) -> str:
    """A keyed digest of a subject id: audit rows can prove an erasure without keeping the id."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Erasure:
    """What one events_erase call removed."""

    events: int
    enriched: int
    dead_letters: int


def events_erase(
    *,
    tenant_id: uuid.UUID | str,
    subject_id: str,
    before: datetime | None = None,
    actor: str,
    user=None,
    limit: int = BATCH,
) -> Erasure:
    """Remove a subject's events (received before `before`, if given) and all derived rows.

    The events' idempotency keys stay, marked erased (no event data), so a resend of an erased
    event is answered duplicate and not stored again. Audited with counts and a keyed digest of
    the subject id, never the id or the data.
    """
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 255:
        raise ValueError("subject id: 1 to 255 characters")
    tid = str(uuid.UUID(str(tenant_id)))
    where = "AND subject_id = %(subject)s"
    params: dict = {"subject": subject_id}
    if before is not None:
        where += " AND received_at < %(before)s"
        params["before"] = before
    events, enriched, letters = events_delete(
        tenant_id=tid, where=where, params=params, erase=True, limit=limit
    )
    deleted_count(
        "erasure",
        {"ingest_event": events, "events_enriched": enriched, "ingest_deadletter": letters},
    )
    audit_record(
        actor=actor,
        user=user,
        action="events.erase",
        tenant_id=tid,
        target=f"subject:{subject_digest(subject_id)}",
        new={
            "events": events,
            "enriched": enriched,
            "dead_letters": letters,
            "before": before.isoformat() if before else None,
        },
    )
    logger.info("subject erased", extra={"events": events, "enriched": enriched})
    return Erasure(events=events, enriched=enriched, dead_letters=letters)
