"""Reads of runtime flags."""

from __future__ import annotations

import uuid

from flags.registry import specs


def effective_flags(*, tenant_id: uuid.UUID | str | None) -> dict[str, object]:
    """The values in force for a tenant (or the global defaults when tenant_id is None)."""
    return {key: spec.default for key, spec in specs().items()}
