"""The runtime flags that exist, their types, bounds and defaults."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class FlagSpec:
    """One flag: JSON name, Python type, bounds, default, whether /config publishes it."""

    key: str
    type: type
    default: object
    minimum: int | None = None
    maximum: int | None = None
    public: bool = True


def specs() -> dict[str, FlagSpec]:
    """All flags by key (defaults that depend on settings are read here)."""
    return {
        "syncEnabled": FlagSpec("syncEnabled", bool, True),
        "minIntervalSec": FlagSpec("minIntervalSec", int, 900, 5, 86400),
        "retryCap": FlagSpec("retryCap", int, settings.CODEX_RETRY_CAP, 0, 10),
        "ingestRatePerSec": FlagSpec(
            "ingestRatePerSec", int, settings.CODEX_INGEST_RATE_PER_SEC, 1, 100000, public=False
        ),
    }
