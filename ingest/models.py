"""The event ledger, its enrichment (events_enriched) and the dead-letter queue."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import TenantOwned


def _tenant_without_db_constraint() -> models.ForeignKey:
    """TenantOwned's tenant relation without its database foreign key (the hot write's tables).

    No deferred check runs once per written row; why the tenant id holds anyway is on Event.
    """
    return models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        db_index=False,
        editable=False,
        db_constraint=False,
    )


class Event(TenantOwned):
    """An accepted event: the ledger, range-partitioned by month of received_at (ingest.partitions).

    Exactly once per (tenant, idempotency_key) is kept by IdempotencyKey: a unique constraint on
    a partitioned table must include the partition key, so it cannot live here. The database's
    primary key is (tenant_id, id, received_at); `id` is still unique (one identity sequence).
    """

    # No database foreign key (migration ingest 0009): the deferred check ran once per event at
    # commit, a SELECT .. FOR KEY SHARE of the tenant's row, 13-14% of PostgreSQL's CPU for a
    # 100-event batch (perf, docs/performance.md). The tenant id comes from the resolved signing
    # key or webhook source (rows with database foreign keys to the tenant), row-level security's
    # WITH CHECK holds every row to the tenant scope the write opens, and tenants are never
    # deleted (offboarding keeps a tombstone).
    tenant = _tenant_without_db_constraint()
    idempotency_key = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    source = models.CharField(max_length=64, default="sdk")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)
    # sha256 of canonical JSON of (type, occurred_at, source, payload): same key + same content
    # is a duplicate, same key + other content a conflict.
    fingerprint = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64, blank=True)
    # Who or what the event is about (a customer, a person): what events_erase removes by.
    # NULL, not "": no subject, and the partial index ingest_event_subject skips those rows.
    subject_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    enriched_at = models.DateTimeField(null=True, blank=True)
    # Enrichment failures of this event (the drain's retry state; design: driven by the ledger).
    enrich_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    enrich_failed_at = models.DateTimeField(null=True, blank=True, help_text="first failure")
    enrich_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="not drained before this; year 9999 once dead-lettered"
    )

    class Meta:
        indexes = [
            # events_erase finds a subject's events; partial: most events carry no subject
            models.Index(
                fields=["tenant", "subject_id"],
                condition=Q(subject_id__isnull=False),
                name="ingest_event_subject",
            ),
            # reconcile counts per tenant and UTC day of receipt
            models.Index(fields=["tenant", "received_at"], name="ingest_event_received"),
            # the sweeper's work list stays small: only events not yet enriched
            models.Index(
                fields=["tenant", "received_at"],
                condition=Q(enriched_at__isnull=True),
                name="ingest_event_unenriched",
            ),
        ]
        ordering = ["tenant_id", "-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.idempotency_key}"


class EnrichedEvent(TenantOwned):
    """One enriched row per accepted event (what reconcile compares the ledger with).

    Partitioned like the ledger, by the event's received_at, so a month of both goes together.
    """

    event = models.ForeignKey(
        Event,
        on_delete=models.CASCADE,
        db_constraint=False,  # composite (tenant_id, event_id) FK added by tenants.rls
        db_index=False,
        related_name="+",
    )
    type = models.CharField(max_length=100)
    source = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    occurred_date = models.DateField(help_text="UTC day of occurred_at")
    received_at = models.DateTimeField()
    amount_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    lag_ms = models.BigIntegerField(help_text="received_at - occurred_at, milliseconds")
    enriched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "events_enriched"
        constraints = [
            # received_at: the partition key must be part of a unique constraint (it is the
            # event's, so this is still one enriched row per event).
            models.UniqueConstraint(
                fields=["tenant", "event", "received_at"], name="events_enriched_per_event"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "occurred_date"], name="events_enriched_day"),
        ]
        ordering = ["tenant_id", "-occurred_at"]

    def __str__(self) -> str:
        return f"{self.type} #{self.event_id}"


class IdempotencyKey(TenantOwned):
    """The per-tenant exactly-once guard: one row per (tenant, idempotency_key) ever accepted.

    Written in the same statement as the ledger row (ingest.services). Outlives its event by
    settings.CODEX_IDEMPOTENCY_GRACE_DAYS after retention, and survives erasure (erased_at set,
    no event data) so a resent erased event is answered "duplicate" and not stored again.
    """

    # No database foreign key, as on the ledger (Event.tenant): a deferred check per event cost
    # about 0.4 ms of a 100-event batch's 5.8 ms of database CPU (docs/scaling.md).
    tenant = _tenant_without_db_constraint()
    pk = models.CompositePrimaryKey("tenant", "idempotency_key")
    idempotency_key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    event_id = models.BigIntegerField()
    received_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ingest_idempotency"
        indexes = [
            # retention finds expired keys by age; BRIN: next to free to keep up on the hot path
            BrinIndex(fields=["tenant", "received_at"], name="ingest_idem_received"),
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class DeadLetter(TenantOwned):
    """An event a stage gave up on after its retries; resolved by a successful replay."""

    class Stage(models.TextChoices):
        ENRICH = "enrich"

    event = models.ForeignKey(
        Event,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    stage = models.CharField(max_length=32, choices=Stage.choices, default=Stage.ENRICH)
    error_class = models.CharField(max_length=200)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "event", "stage"],
                condition=Q(resolved_at__isnull=True),
                name="ingest_deadletter_one_open",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "last_failed_at"],
                condition=Q(resolved_at__isnull=True),
                name="ingest_deadletter_open",
            ),
        ]
        ordering = ["tenant_id", "-last_failed_at"]
        verbose_name = "dead letter"
        permissions = [("replay_deadletter", "Can replay dead letters")]

    def __str__(self) -> str:
        return f"{self.stage} event #{self.event_id}: {self.error_class}"


class IngestWarning(TenantOwned):
    """Input an authenticated tenant sent that was refused: a rejected batch item, a bad request.

    Written by ingest.ingest_warnings (sampled beyond a per-minute budget, pruned after 7 days);
    what a tenant's integration got wrong, for the operator to show them.
    """

    created_at = models.DateTimeField(default=timezone.now)
    code = models.CharField(max_length=64)
    message = models.TextField(blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    key_id = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    item = models.TextField(blank=True, help_text="the refused item or body, at most 8 KiB")
    # The refused item's own subject_id, when it had one: what events_erase removes warnings by
    # (with a search of the item's text as the fallback, docs/lifecycle.md).
    subject_id = models.CharField(max_length=255, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="ingest_warning_time"),
            models.Index(fields=["tenant", "code", "created_at"], name="ingest_warning_code"),
            models.Index(
                fields=["tenant", "subject_id"],
                name="ingest_warning_subject",
                condition=~models.Q(subject_id=""),
            ),
        ]
        ordering = ["tenant_id", "-created_at"]
        verbose_name = "ingestion warning"

    def __str__(self) -> str:
        return f"{self.code} at {self.created_at:%Y-%m-%d %H:%M:%S}"
