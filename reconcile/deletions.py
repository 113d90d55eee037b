"""reconcile's entries in the deletion registry: a tenant's runs go with it."""

from __future__ import annotations

from tenants.deletions import Deletion, deletions_register

_COUNTS = "per-day counts, nothing of a subject (an erased event drops out on the next run)"


def register() -> None:
    """reconcile's entries (ReconcileConfig.ready)."""
    deletions_register(
        "reconcile",
        Deletion("reconcile_run", not_erased=_COUNTS),
        Deletion("reconcile_source_run", not_erased=_COUNTS),
    )
