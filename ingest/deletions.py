"""ingest's entries in the deletion registry: its ledger, derived rows, keys and warnings."""

from __future__ import annotations

from ingest.services.erasure import warnings_erase
from ingest.services.purge import PARTITION_KEY, events_delete
from tenants.deletions import Deletion, Progress, Subject, deletions_register

_WITH_EVENT = "goes with its event, in ingest_event's statement"


def _per_table(progress: Progress):
    """events_delete's per-batch counts, reported per table."""

    def report(events: int, enriched: int, letters: int) -> None:
        progress("ingest_event", events)
        progress("events_enriched", enriched)
        progress("ingest_deadletter", letters)

    return report


def _events_offboard(*, tenant_id: str, limit: int, progress: Progress) -> None:
    """Every event of the tenant with its enriched rows and dead letters, batch after batch."""
    events_delete(
        tenant_id=tenant_id,
        where="",
        params={},
        erase=False,
        limit=limit,
        on_batch=_per_table(progress),
    )


def _events_erase(*, subject: Subject, limit: int, progress: Progress) -> None:
    """The subject's events with their enriched rows and dead letters; their keys marked erased."""
    where = "AND subject_id = %(subject)s"
    params: dict = {"subject": subject.subject_id}
    if subject.before is not None:
        where += " AND received_at < %(before)s"
        params["before"] = subject.before
    events_delete(
        tenant_id=subject.tenant_id,
        where=where,
        params=params,
        erase=True,
        limit=limit,
        on_batch=_per_table(progress),
    )


def _warnings_erase(*, subject: Subject, limit: int, progress: Progress) -> None:
    """The tenant's ingestion warnings that carry or name the subject."""
    warnings_erase(
        tenant_id=subject.tenant_id,
        subject_id=subject.subject_id,
        before=subject.before,
        limit=limit,
        on_batch=progress,
    )


def register() -> None:
    """ingest's entries (IngestConfig.ready), in the order they run: the ledger first."""
    deletions_register(
        "ingest",
        Deletion("ingest_event", offboard=_events_offboard, erase=_events_erase, key=PARTITION_KEY),
        # Offboarding sweeps these after the ledger: rows whose event went earlier.
        Deletion("events_enriched", not_erased=_WITH_EVENT, key=PARTITION_KEY),
        Deletion("ingest_deadletter", not_erased=_WITH_EVENT),
        Deletion(
            "ingest_idempotency",
            not_erased="stays, marked erased_at without event data (ingest_event's statement),"
            " so a resend of an erased event is a duplicate and is not stored again",
        ),
        Deletion("ingest_ingestwarning", erase=_warnings_erase),
    )
