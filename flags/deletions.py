"""flags' entries in the deletion registry: a tenant's overrides go, its flag history stays."""

from __future__ import annotations

from tenants.deletions import Deletion, deletions_register


def register() -> None:
    """flags' entries (FlagsConfig.ready)."""
    deletions_register(
        "flags",
        Deletion("flags_tenantflag", not_erased="flag values, nothing of a subject"),
        Deletion(
            "flags_flagchange",
            kept="audit: the history of the tenant's flag values",
            not_erased="flag values, nothing of a subject",
        ),
    )
