"""Erasure: a subject's events, everything derived from them and its ingestion warnings go."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from codex import error_codes as codes
from ingest.services.purge import BATCH, deleted_count, rows_delete
from tenants.audit import audit_record
from tenants.deletions import Subject, subject_rows_delete

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
    warnings: int = 0


# The tables an erasure reports (audit row, metric, result), zeros included.
_COUNTED = ("ingest_event", "events_enriched", "ingest_deadletter", "ingest_ingestwarning")

# A warning is the subject's when its own subject_id column says so (the refused item carried
# it) or when its stored text names the subject: as a JSON string in the usual spellings, or, for
# an integer id (a platform's customer id), as a bare JSON number. Generous on purpose: a warning
# is a diagnostic, and erasing one too many costs nothing; keeping one that names the subject does.
_WARNINGS_WHERE = (
    "AND (subject_id = %(subject)s OR strpos(item, %(spelled_0)s) > 0"
    " OR strpos(item, %(spelled_1)s) > 0 OR strpos(item, %(spelled_2)s) > 0"
    " OR (%(number)s <> '' AND item ~ %(number)s))"
)


def _warnings_params(subject_id: str) -> dict[str, str]:
    """How a subject id can appear in a warning's text (see _WARNINGS_WHERE)."""
    plain = json.dumps(subject_id, ensure_ascii=False)
    number = ""
    if re.fullmatch(r"-?[0-9]{1,40}", subject_id):
        number = rf"(^|[:,\[]\s*){re.escape(subject_id)}(\s*[,}}\]]|$)"
    return {
        "subject": subject_id,
        "spelled_0": plain,
        "spelled_1": json.dumps(subject_id),  # non-ASCII as \uXXXX
        "spelled_2": plain.replace("/", "\\/"),  # "/" as "\/"
        "number": number,
    }


def warnings_erase(
    *,
    tenant_id: str,
    subject_id: str,
    before: datetime | None = None,
    limit: int = BATCH,
    on_batch=None,
) -> int:
    """Delete the tenant's ingestion warnings about this subject (created before `before`).

    `on_batch(table, n)` is called after each batch.
    """
    where = _WARNINGS_WHERE
    params = _warnings_params(subject_id)
    if before is not None:
        where += " AND created_at < %(before)s"
        params["before"] = before
    return rows_delete(
        "ingest_ingestwarning",
        tenant_id=tenant_id,
        where=where,
        params=params,
        limit=limit,
        on_batch=on_batch,
    )


def events_erase(
    *,
    tenant_id: uuid.UUID | str,
    subject_id: str,
    before: datetime | None = None,
    actor: str,
    user=None,
    limit: int | None = None,
) -> Erasure:
    """Remove a subject's events, all derived rows and its ingestion warnings.

    With `before`: only events received and warnings created before it. The events'
    idempotency keys stay, marked erased (no event data), so a resend of an erased event is
    answered duplicate and not stored again. Audited with counts and a keyed digest of the
    subject id, never the id or the data. `limit`: rows per statement (default: each
    registered table's batch). `invalid_subject` for a subject id not of 1 to 255 characters.
    """
    if not isinstance(subject_id, str) or not 1 <= len(subject_id) <= 255:
        raise codes.INVALID_SUBJECT.error()
    tid = str(uuid.UUID(str(tenant_id)))
    deleted = {table: 0 for table in _COUNTED}

    def progress(table: str, n: int) -> None:
        deleted[table] = deleted.get(table, 0) + n

    # Every app's registered erasure, top layer first (tenants.deletions): ingest's takes the
    # events with their enriched rows and dead letters (keys marked erased), then the warnings.
    subject_rows_delete(
        subject=Subject(tenant_id=tid, subject_id=subject_id, before=before),
        progress=progress,
        limit=limit,
    )
    deleted_count("erasure", deleted)
    events, enriched = deleted["ingest_event"], deleted["events_enriched"]
    letters, warnings = deleted["ingest_deadletter"], deleted["ingest_ingestwarning"]
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
            "warnings": warnings,
            "before": before.isoformat() if before else None,
        },
    )
    logger.info(
        "subject erased", extra={"events": events, "enriched": enriched, "warnings": warnings}
    )
    return Erasure(events=events, enriched=enriched, dead_letters=letters, warnings=warnings)
