"""Reconcile runs: per tenant and UTC day, accepted events in the ledger vs events_enriched."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.models import TenantOwned


class ReconcileRun(TenantOwned):
    """The latest reconciliation of one tenant's UTC day of receipt (re-runs update it)."""

    day = models.DateField(help_text="UTC day of received_at")
    window_start = models.DateTimeField()
    # End of the counted window: the day's end, or (today) now minus the settle time.
    window_end = models.DateTimeField()
    accepted = models.BigIntegerField(help_text="ledger rows (ingest_event) in the window")
    enriched = models.BigIntegerField(help_text="of those, with an events_enriched row")
    dead_lettered = models.BigIntegerField(
        help_text="of those not enriched, with an unresolved dead letter"
    )
    drift = models.FloatField(help_text="(accepted - enriched) / accepted; 0 when accepted is 0")
    # The start of the pass that wrote the row: rows of one pass share it ("the last run").
    run_at = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reconcile_run"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="reconcile_run_per_day")
        ]
        indexes = [models.Index(fields=["tenant", "run_at"], name="reconcile_run_latest")]
        ordering = ["tenant_id", "-day"]
        verbose_name = "reconcile run"

    def __str__(self) -> str:
        return f"{self.day} drift {self.drift:.4%}"

    @property
    def pending(self) -> int:
        """Accepted, not enriched and not dead-lettered: still in flight, or lost."""
        return self.accepted - self.enriched - self.dead_lettered


class SourceReconcileRun(TenantOwned):
    """One tenant source's UTC day compared with the source system itself (reconcile --source).

    `at_source` events the platform lists for the day (by its own creation time); of those,
    `missing_at_ingest` were not in the ledger when the run looked, and `repaired` were ingested
    by --repair through the same write path.
    """

    source_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    day = models.DateField(help_text="UTC day of the events' creation at the source")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    at_source = models.BigIntegerField()
    missing_at_ingest = models.BigIntegerField()
    repaired = models.BigIntegerField(default=0)
    run_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reconcile_source_run"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source_id", "day"], name="reconcile_source_run_per_day"
            )
        ]
        ordering = ["tenant_id", "-day"]
        verbose_name = "source reconcile run"

    def __str__(self) -> str:
        return f"{self.kind} {self.day}: {self.missing_at_ingest} missing at ingest"
