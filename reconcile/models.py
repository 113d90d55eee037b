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
